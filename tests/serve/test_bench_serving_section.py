"""`make bench` rewrites BENCHMARKS.md; the hand-measured ## Serving section must survive it."""

from __future__ import annotations

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
from bench_report import keep_section  # noqa: E402

OLD = "# Benchmarks\n\n## Evaluation\nold rows\n\n## Serving\nserved 88.7 %\nq4 -1.0\n\n## Training\nold\n"
NEW = "# Benchmarks\n\n## Evaluation\nnew rows\n\n## Training\nnew\n"


def test_serving_section_is_carried_over_whole():
    kept = keep_section(OLD, NEW, "## Serving")
    assert kept == NEW + "\n## Serving\nserved 88.7 %\nq4 -1.0\n"


def test_nothing_to_carry_or_already_there():
    assert keep_section("# Benchmarks\n", NEW, "## Serving") == NEW
    assert keep_section(OLD, OLD, "## Serving") == OLD
