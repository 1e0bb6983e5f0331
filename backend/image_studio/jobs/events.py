"""In-process event bus for job events (:class:`~image_studio.types.ProgressEvent`).

Subscribers get a bounded queue each; a slow subscriber loses the oldest *progress/preview*
events first (they are superseded by the next one) but never a lifecycle event (queued,
started, fallback, succeeded, failed, canceled, expired). Publishing never blocks the
publisher. When scaled out, a Postgres LISTEN/NOTIFY or Redis pub/sub bus fills the same
interface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..types import ProgressEvent

_DROPPABLE = {"progress", "preview"}


@dataclass(eq=False)
class Subscription:
    """One subscriber: the job it follows (None: every job) and its queue."""

    job_id: str | None
    queue: asyncio.Queue[ProgressEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    dropped: int = 0

    def offer(self, event: ProgressEvent) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                if not self._drop_one_droppable(event):
                    return

    def _drop_one_droppable(self, incoming: ProgressEvent) -> bool:
        """Make room: drop the oldest droppable event; if none, drop ``incoming`` when it is
        droppable, else the oldest event. Returns whether room was made."""
        items = list(self.queue._queue)  # type: ignore[attr-defined]  # asyncio.Queue's deque
        for i, ev in enumerate(items):
            if ev.type in _DROPPABLE:
                del self.queue._queue[i]  # type: ignore[attr-defined]
                self.dropped += 1
                return True
        if incoming.type in _DROPPABLE:
            self.dropped += 1
            return False
        self.queue.get_nowait()
        self.dropped += 1
        return True


class EventBus:
    """Fan-out of job events to subscribers in this process."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def publish(self, event: ProgressEvent) -> None:
        """Deliver ``event`` to every subscriber of its job and to every global subscriber."""
        for sub in list(self._subs):
            if sub.job_id is None or sub.job_id == event.job_id:
                sub.offer(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str | None = None) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the ``async with`` block."""
        sub = Subscription(job_id)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
