"""LLM generation of training pairs through any OpenAI-compatible chat-completions API.

    OPENAI_API_KEY=... python -m datagen llm --base-url https://api.openai.com/v1 --model MODEL \\
        --per-skill 50 --out data/llm/pairs.jsonl
    python -m datagen llm --base-url http://127.0.0.1:8000/v1 --model local --review review/
    python -m datagen merge-review review/ --pack examples/skills

Why the output can be trusted, and a run can be killed and resumed:

- The plan (datagen/llm_requests.py). Request i of skill s is a pure function of (pack contents,
  s, i, model, seed, batch). A skill gets requests 0, 1, 2, ... until it has `--per-skill` pairs
  or hits a cap of 3x the requests it would need if every candidate were accepted.
- The cache (skilltune/completions.py). Every answer that holds at least one valid pair is stored
  under `--cache` as `<sha256 of the canonical request body>.json` (written to a temporary file,
  then renamed). The key is the request body only: no API key, no base URL. A cached request makes
  no HTTP call, so a finished run re-runs with zero requests. An answer without a valid pair
  (garbage, an empty or oddly shaped message) is judged and rejected but not cached, and such an
  entry left by an older version counts as a miss, so a later run against a healthy server asks
  again.
- Plan order. Requests are sent concurrently (`--concurrency` in flight, a new one as soon as one
  returns), but their candidates are judged strictly in plan order: skill by skill in pack order,
  request by request, candidate by candidate. What is accepted therefore never depends on timing.
- Append-only output (skilltune/appendlog.py). An accepted pair is written as one line and flushed
  before the next is judged. On start an existing `--out` (and `--rejects`) is read back and
  checked whole before anything is changed: a file that is not that JSONL (text, bad JSON, invalid
  UTF-8, a folder) is a one-line error and is left as it is. A last line without a newline is kept
  if it is a valid line; one that is not (a torn write) is cut off, with a warning naming its line
  and size. The pairs count toward the targets and the dedup set, and replaying the plan from
  request 0 (from the cache, mostly) skips them again, so a killed and resumed run ends with
  exactly the pairs an uninterrupted run writes.
- Checks (datagen/llm_answers.py). A candidate must be JSON with a non-empty one-line `user` and
  either `arguments` (an object) or `call` (text, parsed, never executed); the call must fit its
  skill and survive a round trip through its text; the utterance must be new by `normalize()`
  across the whole pack and everything accepted so far. The pair must also make sense
  (datagen/pair_checks.py): the request has words, no value is "", and a value the skill copies
  from the request is said in it. With `--judge-model` a second model must then answer yes to
  "does the call answer the request?" (datagen/llm_judge.py; its verdicts are cached too).
  Everything else goes to `--rejects` with the reason; the summary counts rejects by reason. Any
  JSON answer is read without a crash: a tool call's `arguments` may be JSON text or already an
  object. A run that had pairs to find and accepted none fails with one line saying why.

Retries, backoff with jitter and Retry-After are the `openai` client's own (`--max-retries`).
The API key is read from OPENAI_API_KEY only and is handed to the client, nowhere else.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from datagen.llm_answers import build_pair, read_answer, usable
from datagen.llm_judge import Judge
from datagen.llm_requests import request_body, request_cap
from datagen.review import write_review
from skilltune.appendlog import AppendLog, jsonl_line
from skilltune.cache import ResponseCache
from skilltune.completions import CachedCompletions, CompletionCounts, EndpointBackend
from skilltune.pairs import normalize
from skilltune.skills import Skill
from skilltune.window import sliding_window

PAIR_SCHEMA = "pair"
REJECT_SCHEMA = "reject"


@dataclass
class Settings:
    pack: Path
    base_url: str
    model: str
    per_skill: int
    batch: int
    out: Path | None
    rejects: Path
    cache: Path
    concurrency: int
    max_retries: int
    timeout: float
    seed: int
    review: Path | None
    skills: list[str] | None
    judge_model: str | None = None  # None: no judge pass
    judge_base_url: str | None = None  # None: the generation's base_url


@dataclass
class Stats(CompletionCounts):
    """A run's counts; `requests` are the HTTP requests it started (the client's retries not counted)."""

    accepted: int = 0
    rejected: int = 0
    resumed: int = 0  # pairs already in --out when the run started
    answers: int = 0  # answers judged (fetched or cached)
    replayed: int = 0  # pairs of --out met again while replaying the plan
    first_problem: str | None = None  # the first reject reason of the run
    reasons: Counter = field(default_factory=Counter)  # rejects by reason_kind
    judge: CompletionCounts = field(default_factory=CompletionCounts)  # the judge's requests and cache hits


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def reason_kind(reason: str) -> str:
    """What the summary counts a reject as: its reason without the values it quotes or the details
    after its first ": " or " (", which differ from candidate to candidate.

    "note='buy eggs' is not in the request" -> "note=... is not in the request",
    "duplicate of a pack example (notes.txt:12)" -> "duplicate of a pack example"; a judge's
    verdict ("judge: no", "judge: unclear answer") is kept whole."""
    if reason.startswith("judge: "):
        return reason
    return re.split(r": | \(", _QUOTED.sub("...", reason), maxsplit=1)[0]


@dataclass
class SkillState:
    skill: Skill
    target: int
    cap: int
    pairs: list[dict] = field(default_factory=list)  # every pair of this skill in --out, old and new
    next_index: int = 0  # the next planned request whose candidates are to be judged

    @property
    def full(self) -> bool:
        return len(self.pairs) >= self.target

    @property
    def done(self) -> bool:
        return self.full or self.next_index >= self.cap


class Generator:
    """One run of `python -m datagen llm`; see the module docstring for the rules it keeps.

    `warn` shows a one-line warning: a torn last line cut from --out or --rejects."""

    def __init__(self, settings: Settings, pack: list[Skill], selected: list[Skill], warn: Callable[[str], None]):
        self.settings, self.pack = settings, pack
        cap = request_cap(settings.per_skill, settings.batch)
        self.states = [SkillState(skill, settings.per_skill, cap) for skill in selected]
        self.cache = ResponseCache(settings.cache)
        self.out = AppendLog(settings.out, PAIR_SCHEMA, warn) if settings.out else None
        self.rejects = AppendLog(settings.rejects, REJECT_SCHEMA, warn)
        self.stats = Stats()
        self.fetched: dict[tuple[str, int], dict] = {}  # answers in memory, waiting for their turn
        self.seen: dict[str, str] = {}  # normalized utterance -> where it comes from
        self.replay: Counter = Counter()  # pairs from --out that replaying the plan will meet again
        self.rejects_written: set[str] = set()
        self.progress = None
        self.judge: Judge | None = None  # set while a run with --judge-model goes on

    # -- start: what is already on disk

    def load_existing(self) -> None:
        for skill in self.pack:
            for example in skill.examples:
                self.seen.setdefault(
                    normalize(example.user), f"a pack example ({Path(skill.path).name}:{example.line})"
                )
        by_name = {state.skill.name: state for state in self.states}
        for pair in self.out.load() if self.out else []:
            self.seen.setdefault(normalize(pair["user"]), f"an accepted {pair['skill']} pair")
            self.replay[(pair["skill"], pair["user"], pair["call"])] += 1
            if pair["skill"] in by_name:
                by_name[pair["skill"]].pairs.append(pair)
            self.stats.resumed += 1
        self.rejects_written = {jsonl_line(row) for row in self.rejects.load()}
        # both files were read and checked: only now is a torn last line cut from either
        for log in (self.out, self.rejects):
            if log:
                log.repair()

    # -- fetching

    def wanted(self, in_flight: set) -> list[tuple[SkillState, int]]:
        """Requests to send next, in plan order: for each unfinished skill, the ones its gap needs."""
        wanted = []
        for state in self.states:
            if state.done:
                continue
            missing = state.target - len(state.pairs)
            upto = min(state.cap, state.next_index + math.ceil(missing / self.settings.batch))
            for i in range(state.next_index, upto):
                key = (state.skill.name, i)
                if key not in self.fetched and key not in in_flight:
                    wanted.append((state, i))
        return wanted

    async def fetch(self, completions: CachedCompletions, state: SkillState, index: int) -> tuple[dict, dict]:
        """The answer, and the judge's problem with each of its valid pairs ({} without a judge)."""
        s = self.settings
        body = request_body(state.skill, self.pack, index, model=s.model, seed=s.seed, batch=s.batch)
        # an answer with no valid pair is judged (and rejected) but never cached, and a cached one is a miss
        response = await completions.complete(body, f"{state.skill.name} request {index}", partial(usable, state.skill))
        if self.judge is None:
            return response, {}
        # only pairs that can still be accepted: what is already seen stays seen, so it is a
        # duplicate (or a replay) whenever its turn comes and would never reach the verdict
        pairs = [build_pair(state.skill, candidate)[0] for candidate in read_answer(response)[0]]
        pairs = [pair for pair in pairs if pair and normalize(pair["user"]) not in self.seen]
        return response, await self.judge.problems(state.skill, pairs)

    # -- judging, strictly in plan order

    def process(self) -> None:
        """Judge every fetched answer whose turn has come: skill by skill, request by request."""
        for state in self.states:
            while not state.done and (state.skill.name, state.next_index) in self.fetched:
                self.judge_answer(state, *self.fetched.pop((state.skill.name, state.next_index)))
                state.next_index += 1
            if not state.done:
                return  # later skills wait for this one, so acceptance never depends on timing

    def judge_answer(self, state: SkillState, response, verdicts: dict) -> None:
        self.stats.answers += 1
        candidates, problems = read_answer(response)
        for kept, reason in problems:
            self.reject(state, kept, reason)
        for candidate in candidates:
            if state.full:
                break
            self.judge_candidate(state, candidate, verdicts)
        self._show_progress()

    def judge_candidate(self, state: SkillState, candidate, verdicts: dict) -> None:
        pair, reason = build_pair(state.skill, candidate)
        if reason:
            self.reject(state, candidate, reason)
            return
        key = normalize(pair["user"])
        if key in self.seen:
            identity = (pair["skill"], pair["user"], pair["call"])
            if self.replay[identity]:  # accepted here by the run that was interrupted
                self.replay[identity] -= 1
                self.stats.replayed += 1
            else:
                self.reject(state, candidate, f"duplicate of {self.seen[key]}")
            return
        problem = verdicts.get((pair["user"], pair["call"])) if self.judge else None
        if problem:
            self.reject(state, candidate, problem)
            return
        self.seen[key] = f"an accepted {state.skill.name} pair"
        if self.out:
            self.out.append(pair)
        state.pairs.append(pair)
        self.stats.accepted += 1
        if self.progress is not None:
            self.progress.update(1)

    def reject(self, state: SkillState, candidate, reason: str) -> None:
        self.stats.rejected += 1
        self.stats.reasons[reason_kind(reason)] += 1
        if self.stats.first_problem is None:
            self.stats.first_problem = f"{state.skill.name}: {reason}"
        row = {"skill": state.skill.name, "candidate": candidate, "reason": reason}
        if jsonl_line(row) not in self.rejects_written:  # replaying after a resume writes nothing twice
            self.rejects_written.add(jsonl_line(row))
            self.rejects.append(row)

    def _show_progress(self) -> None:
        if self.progress is not None:
            self.progress.set_postfix(
                accepted=self.stats.accepted,
                rejected=self.stats.rejected,
                requests=self.stats.requests,
                cached=self.stats.cache_hits,
                refresh=False,
            )

    # -- the loop

    async def run(self) -> Stats:
        from tqdm import tqdm

        s = self.settings
        self.load_existing()
        missing = sum(max(state.target - len(state.pairs), 0) for state in self.states)
        self.progress = tqdm(total=missing, unit="pair", desc="llm", file=sys.stderr, mininterval=0.5)
        try:
            async with AsyncExitStack() as stack:
                backend = EndpointBackend(s.base_url, s.max_retries, s.timeout)
                completions = await stack.enter_async_context(CachedCompletions(backend, self.cache, self.stats))
                if s.judge_model:  # a client of its own, built as the generation's: same key, retries, cache
                    judging = EndpointBackend(s.judge_base_url or s.base_url, s.max_retries, s.timeout)
                    judged = await stack.enter_async_context(CachedCompletions(judging, self.cache, self.stats.judge))
                    self.judge = Judge(judged, s.judge_model, s.concurrency)
                await self.fetch_all(completions)
        finally:
            self.progress.close()
            if self.out:
                self.out.close()
            self.rejects.close()
        if s.review:
            write_review(s.review, [(state.skill, state.pairs) for state in self.states if state.pairs])
        return self.stats

    async def fetch_all(self, completions: CachedCompletions) -> None:
        """A sliding window: `concurrency` requests in flight, a new one sent as soon as one returns.

        Answers wait in `fetched` until their turn in plan order. After a failure no new request
        is sent; the ones in flight are awaited and judged, then the first failure is raised.
        """

        def next_requests(room: int, in_flight) -> list[tuple[SkillState, int]]:
            return self.wanted({(state.skill.name, index) for state, index in in_flight})[:room]

        def on_result(request: tuple[SkillState, int], response: dict) -> None:
            state, index = request
            self.fetched[(state.skill.name, index)] = response
            self.process()

        await sliding_window(
            next_requests, lambda request: self.fetch(completions, *request), on_result, self.settings.concurrency
        )

    def nothing_accepted(self) -> str | None:
        """Why a run that had pairs to find accepted none (one line), or None."""
        if self.stats.accepted or self.stats.replayed or all(len(state.pairs) >= state.target for state in self.states):
            return None
        first = f", first problem: {self.stats.first_problem}" if self.stats.first_problem else ""
        return (
            f"no answer gave a usable pair: {self.stats.answers} answers, {self.stats.rejected} rejected"
            f"{first} (all in {self.settings.rejects}; answers without a valid pair are not cached)"
        )

    def shortfalls(self) -> list[str]:
        return [
            f"{state.skill.name}: {len(state.pairs)} of {state.target} pairs after {state.cap} requests (the cap)"
            for state in self.states
            if not state.full
        ]
