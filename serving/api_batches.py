"""Posted bodies gathered into batches and scored in worker threads (:class:`Batches`).

The per-batch cost of validation and scoring is most of the cost of a posted deal, so
bodies that arrive together are handed over together; the event loop (``/health``) never
waits for them. No web stack here: :mod:`serving.api` submits the bodies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio

log = logging.getLogger(__name__)

#: How a batch of posted bodies is gathered (:meth:`Batches._gather`): the first body
#: waits for those still arriving, at most GATHER_SHARE of the last batch's scoring time,
#: within [GATHER_MIN_S, GATHER_MAX_S], and no longer once GATHER_IDLE_SHARE of that
#: passes without one.
GATHER_STEP_S = 0.005
GATHER_MIN_S = 0.030
GATHER_MAX_S = 0.600
GATHER_SHARE = 1.0
GATHER_IDLE_SHARE = 0.5
#: What the first batch's gathering assumes of the last batch (none yet): it took this
#: long and answered a full batch (clients connecting at once arrive spread out).
GATHER_FIRST_S = 0.3


class Batches:
    """Posted bodies queued and handed to ``process`` in batches, in worker threads.

    Bodies that arrive while a batch is being scored are taken together (at most
    ``max_batch``), so the per-call cost of validation and scoring is paid once per batch
    rather than once per request; ``process`` returns one result per body, in order.
    At most ``workers`` batches run at once; the event loop (``/health``) never waits.
    """

    def __init__(self, process: Callable[[list], list], *, max_batch: int, workers: int) -> None:
        if max_batch < 1 or workers < 1:
            raise ValueError("max_batch and workers must be at least 1")
        self.process, self.max_batch, self.workers = process, max_batch, workers
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._last_s = GATHER_FIRST_S  # how long the last batch took to score
        self._expected = max_batch  # bodies answered by the last batch + queued meanwhile

    async def submit(self, item: Any) -> Any:
        """``process``'s result for ``item`` (an exception object returned as a result is
        returned too); the exception ``process`` raised if the whole batch failed."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:  # first use, or a new event loop
            self._loop, self._queue = loop, asyncio.Queue()
            self._tasks = [loop.create_task(self._work(self._queue)) for _ in range(self.workers)]
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            batch = [await queue.get()]
            await self._gather(queue, batch)
            batch = [(item, f) for item, f in batch if not f.done()]  # gone clients
            if not batch:
                continue
            started, cpu, failed = time.perf_counter(), [0.0], None
            try:
                results = await anyio.to_thread.run_sync(self._timed, [i for i, _ in batch], cpu)
            except Exception as exc:  # a bug must fail these requests, not the worker
                results, failed = [None] * len(batch), exc
            self._last_s = time.perf_counter() - started
            self._expected = len(batch) + queue.qsize()
            log.warning(
                "scored a batch of %d bodies in %.0f ms (%.0f ms CPU)",
                len(batch), 1000 * self._last_s, 1000 * cpu[0],
            )  # fmt: skip
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if failed is not None:
                    future.set_exception(failed)
                else:
                    future.set_result(result)

    def _timed(self, items: list, cpu: list[float]) -> list:
        """``process(items)``, its thread's CPU time in ``cpu[0]``."""
        started = time.thread_time()
        try:
            return self.process(items)
        finally:
            cpu[0] = time.thread_time() - started

    async def _gather(self, queue: asyncio.Queue, batch: list) -> None:
        """Add the queued bodies to ``batch``, and those still arriving.

        The per-batch cost is most of the cost, so a body that misses a batch waits a
        whole batch, and makes the next one pay the per-batch cost again. Clients answered
        by a batch usually post their next bodies at once, but they arrive spread over a
        while (each response sent and each body read on the event loop, the clients' own
        time): while fewer bodies are gathered than were queued or answered when the last
        batch ended (``_expected``), wait another :data:`GATHER_STEP_S`; once they are all
        here, stop when the queue stops growing. In all at most :data:`GATHER_SHARE` of
        the last batch's time, within :data:`GATHER_MIN_S` and :data:`GATHER_MAX_S`, and
        only while bodies keep coming (one within :data:`GATHER_IDLE_SHARE` of that: the
        clients may have stopped). Both scale with the last batch's time, so on a loaded
        machine, where clients come back slowly too, the wait grows with it. Before the
        first batch, :data:`GATHER_FIRST_S` stands for the last batch's time and a full
        batch is expected. Otherwise two groups of clients would take turns, each waiting
        for the other's batch.
        """
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        longest = min(GATHER_MAX_S, max(GATHER_MIN_S, GATHER_SHARE * self._last_s))
        idle, expected = GATHER_IDLE_SHARE * longest, min(self.max_batch, self._expected)
        while True:
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            now = loop.time()
            if len(batch) >= self.max_batch or now - start >= longest:
                return
            before = queue.qsize()
            await asyncio.sleep(GATHER_STEP_S)
            if queue.qsize() > before:
                last = loop.time()
            elif len(batch) + queue.qsize() >= expected or loop.time() - last >= idle:
                return
