"""The response cache of every LLM request skilltune makes (datagen llm, datagen documents).

One JSON file per request, `<sha256 of the canonical request body>.json`, holding
{"request": body, "response": completion}. The body holds no key and no URL, so a cache can be
shared and a re-run with the same settings makes no requests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from skilltune.jsonio import write_text


def cache_key(body: dict) -> str:
    """sha256 of the canonical JSON of the request body (which holds no key and no URL)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """One JSON file per request: {"request": body, "response": completion}, renamed into place."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            stored = json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # unreadable: a miss, and the new answer replaces it
            return None
        response = stored.get("response") if isinstance(stored, dict) else None
        return response if isinstance(response, dict) else None

    def put(self, key: str, body: dict, response: dict) -> None:
        write_text(self._path(key), json.dumps({"request": body, "response": response}, ensure_ascii=False) + "\n")
