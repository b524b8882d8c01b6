import asyncio

import pytest

from skilltune.window import sliding_window


def run_window(jobs: list[int], concurrency: int, follow_up=None):
    """Jobs are numbers; job n sleeps n ms. Returns (results in finish order, started, most in flight)."""
    pending = list(jobs)
    started, results = [], []
    flying = {"now": 0, "most": 0}

    def next_jobs(room, in_flight):
        assert len(in_flight) + room == concurrency and all(job in started for job in in_flight)
        taken, pending[:] = pending[:room], pending[room:]
        started.extend(taken)
        return taken

    async def fetch(job):
        flying["now"] += 1
        flying["most"] = max(flying["most"], flying["now"])
        await asyncio.sleep(job / 1000)
        flying["now"] -= 1
        return job * 10

    def on_result(job, result):
        results.append((job, result))
        if follow_up:
            pending[:0] = follow_up(job)

    asyncio.run(sliding_window(next_jobs, fetch, on_result, concurrency))
    return results, started, flying["most"]


def test_every_job_runs_once_within_the_window():
    results, started, most = run_window([30, 10, 20, 5, 15, 25, 1], concurrency=3)
    assert sorted(results) == sorted((job, job * 10) for job in [30, 10, 20, 5, 15, 25, 1])
    assert started == [30, 10, 20, 5, 15, 25, 1] and most == 3
    assert results[0] == (10, 100)  # results come back as they finish, not in plan order


def test_results_can_ask_for_more_jobs():
    # each job under 100 asks for one follow-up, job + 100
    results, _, _ = run_window([1, 2], concurrency=2, follow_up=lambda job: [job + 100] if job < 100 else [])
    assert sorted(job for job, _ in results) == [1, 2, 101, 102]


def test_after_a_failure_in_flight_results_are_delivered_then_it_is_raised():
    delivered = []

    async def fetch(job):
        await asyncio.sleep(job / 1000)
        if job == 5:
            raise RuntimeError("job 5 failed")
        return job

    pending = [5, 40, 60, 1, 2]

    def next_jobs(room, in_flight):
        taken, pending[:] = pending[:room], pending[room:]
        return taken

    with pytest.raises(RuntimeError, match="job 5 failed"):
        asyncio.run(sliding_window(next_jobs, fetch, lambda job, result: delivered.append(job), 3))
    # 5, 40 and 60 were in flight; 5 failed, so 1 and 2 were never started; 40 and 60 still arrived
    assert delivered == [40, 60] and pending == [1, 2]
