"""Build the stand-in of a config's base model in a local Hugging Face cache (nothing is downloaded).

    python scripts/make_standin.py --config configs/mistral.yml --cache models/hub
    python scripts/make_standin.py --config configs/mistral.yml --cache /tmp/hub --size real   # 7B shapes (GPU check)

`make ... STANDIN=1` runs this and then points HF_HUB_CACHE at the cache with HF_HUB_OFFLINE=1, so the
config's `base_model:` (a hub repo id) loads the stand-in unchanged. See skilltune/standins.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from skilltune.standins import FAMILIES, build_standin, family_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="an Axolotl YAML whose base_model is one of the families' repo ids")
    parser.add_argument("--family", choices=sorted(FAMILIES), help="instead of --config")
    parser.add_argument("--cache", type=Path, default=Path("models/hub"))
    parser.add_argument("--size", choices=["tiny", "real"], default="tiny")
    args = parser.parse_args()
    if (args.config is None) == (args.family is None):
        parser.error("give --config or --family")
    name = args.family
    if args.config is not None:
        try:
            base_model = str((yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}).get("base_model"))
            name = family_of(base_model)
        except KeyError as err:
            sys.exit(f"error: {args.config}: {err.args[0]}")
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            sys.exit(f"error: {args.config}: cannot read: {' '.join(str(err).split())}")
    folder = build_standin(name, args.cache, size=args.size)
    print(
        f"{FAMILIES[name].repo_id}: {args.size} stand-in ({FAMILIES[name].model_type.replace('Config', '')}) "
        f"in {folder}"
    )


if __name__ == "__main__":
    main()
