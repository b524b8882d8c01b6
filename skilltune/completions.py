"""The one cached chat-completions client of `datagen llm` and `datagen documents`.

A request is answered from the response cache (skilltune/cache.py: one file per request body)
when it can be, else by a backend: an OpenAI-compatible endpoint (EndpointBackend, through
skilltune/openai_api.py) or anything else with the same two methods (datagen documents' local
model). The caller says which answers are `usable`: only those are cached, and a cached answer
that is not usable counts as a miss, so a later run against a healthy server asks again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from skilltune.cache import ResponseCache, cache_key
from skilltune.openai_api import async_client, post_chat

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)


def unfence(text: str) -> str:
    """What a Markdown code fence around the whole of `text` holds (```json ... ```), else `text`:
    models often wrap the JSON they were asked for in one."""
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text


class CompletionBackend(Protocol):
    """Where uncached requests go: an async context manager answering one body at a time."""

    async def __aenter__(self): ...

    async def __aexit__(self, *exc): ...

    async def complete(self, body: dict, what: str) -> dict:
        """The chat-completions answer to `body`; `what` names the request in error messages."""


class EndpointBackend:
    """An OpenAI-compatible endpoint through the project's one client, with its own retries,
    backoff and Retry-After. Failures raise EndpointError, one line naming the endpoint."""

    def __init__(self, base_url: str, max_retries: int, timeout: float):
        self.base_url, self.max_retries, self.timeout = base_url, max_retries, timeout
        self.client = None

    async def __aenter__(self):
        self.client = async_client(self.base_url, self.max_retries, self.timeout)
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc):
        await self.client.__aexit__(*exc)

    async def complete(self, body: dict, what: str) -> dict:
        # both commands take --max-retries: a failure says how many retries it was given
        return await post_chat(self.client, body, self.base_url, f" ({what}; --max-retries {self.max_retries})")


@dataclass
class CompletionCounts:
    requests: int = 0  # requests this run sent to the backend (the client's own retries not counted)
    cache_hits: int = 0


def every_answer(response: dict) -> bool:
    """The default `usable`: any answer the backend gave is worth keeping."""
    return True


class CachedCompletions:
    """Chat completions from the cache when it holds a usable answer, else from `backend`.

    `counts` is updated as requests are answered (a run's statistics may extend CompletionCounts,
    to be shown while the run goes on)."""

    def __init__(self, backend: CompletionBackend, cache: ResponseCache, counts: CompletionCounts | None = None):
        self.backend, self.cache = backend, cache
        self.counts = CompletionCounts() if counts is None else counts

    async def __aenter__(self):
        await self.backend.__aenter__()
        return self

    async def __aexit__(self, *exc):
        return await self.backend.__aexit__(*exc)

    async def complete(self, body: dict, what: str, usable: Callable[[dict], bool] = every_answer) -> dict:
        key = cache_key(body)
        cached = self.cache.get(key)
        if cached is not None and usable(cached):
            self.counts.cache_hits += 1
            return cached
        self.counts.requests += 1
        response = await self.backend.complete(body, what)
        if usable(response):  # an unusable answer is still returned, to be judged, but never kept
            self.cache.put(key, body, response)
        return response
