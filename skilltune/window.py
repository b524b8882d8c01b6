"""A sliding window of requests: at most `concurrency` in flight, the next sent as soon as one
returns (datagen llm and datagen documents both send their requests through it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


async def sliding_window(
    next_jobs: Callable[[int, Collection[Job]], list[Job]],
    fetch: Callable[[Job], Awaitable[Result]],
    on_result: Callable[[Job, Result], None],
    concurrency: int,
) -> None:
    """Run jobs until `next_jobs` has none left and nothing is in flight.

    `next_jobs(room, in_flight)` returns up to `room` jobs to start now (it sees the jobs in
    flight, so it never asks twice); it is asked again after every batch of results, so a result
    may lead to new jobs. `on_result(job, result)` gets each result in the order they finish.
    After the first failure nothing new is started; the jobs in flight are awaited and their
    results still delivered, then the first failure is raised.
    """
    in_flight: dict[asyncio.Task, Job] = {}
    failure: BaseException | None = None
    while True:
        room = concurrency - len(in_flight)
        if failure is None and room > 0:
            for job in next_jobs(room, in_flight.values()):
                in_flight[asyncio.create_task(fetch(job))] = job
        if not in_flight:
            break
        finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            job = in_flight.pop(task)
            if task.exception() is not None:
                failure = failure or task.exception()
            else:
                on_result(job, task.result())
    if failure is not None:
        raise failure
