"""How the tuned model decodes on the transformers backend.

    free         plain greedy decoding
    constrained  only calls the pack's grammar allows (eval/constrain.py)
    grounded     constrained, and every value the skill copies from the request a span of the
                 request (eval/grounded.py): on the embedded model it raised held-out wording
                 exact match from 60.2 % to 65.9 % and noisy speech from 85.0 % to 87.4 %

`--decoding` sets how `tuned` decodes; `--constrained`/`--grounded` add `tuned-constrained`/
`tuned-grounded` runs beside it, for comparison. The base model always decodes freely: it is
the untouched starting point.
"""

from __future__ import annotations

from collections.abc import Iterable

DECODINGS = ("free", "constrained", "grounded")


def decoding_runs(decoding: str, also: Iterable[str] = ()) -> dict[str, str]:
    """Model label -> its decoding: `tuned` as `decoding`, then `tuned-<name>` for each other in `also`."""
    runs = {"tuned": decoding}
    for name in also:
        if name != decoding:
            runs[f"tuned-{name}"] = name
    return runs


def processors_for(decoding: str, skills, style: str, max_new_tokens: int):
    """The logits-processors factory for `decoding` (None for free decoding). The caller has checked
    that `skills` is the pack and `style` is python or json."""
    if decoding == "free":
        return None
    from eval.constrain_processor import grammar_processors

    return grammar_processors(skills, style=style, max_new_tokens=max_new_tokens, grounded=decoding == "grounded")
