"""Time bounds around a provider's upstream stream, enforced by the host for every provider.

``StreamGuard`` wraps the source of a ``DictEventStream`` / ``RawEventStream`` (see
``EventStream.guard``): the first item must arrive by the first-byte deadline, each
later one within the idle gap, and the whole stream by the total deadline. A bound
that passes is an ``UpstreamTimeoutError`` (a 504 before the answer started, an
in-stream error after). ``prime()`` pulls the first item before the client is
answered, so a stream that fails before its first byte can still be retried or fall
back. ``on_end`` is told once how the stream ended (None: completed or closed early).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, NoReturn, TypeVar

from modelmux.errors import ModelMuxError, UpstreamError, UpstreamTimeoutError
from modelmux.http import transport_error

T = TypeVar("T")
_NOTHING: Any = object()

EndFn = Callable[[ModelMuxError | None], None]


class StreamGuard(Generic[T]):
    """An async iterator over ``source`` with first-byte, idle-gap and total deadlines (loop time).

    One lazy timer per stream, not one per chunk: the timer only looks at how long the
    current wait for the upstream has lasted and re-arms itself when a newer wait began,
    so a chunk costs two attribute writes. When a bound passes during a wait, the waiting
    task is cancelled and the cancellation becomes an ``UpstreamTimeoutError``.
    """

    def __init__(
        self,
        source: AsyncIterator[T],
        *,
        provider: str,
        first_by: float,
        idle: float | None,
        end_by: float,
        on_end: EndFn | None = None,
    ) -> None:
        self._source = source
        self._it = source.__aiter__()
        self._provider = provider
        self._first_by = min(first_by, end_by)
        self._idle = idle
        self._end_by = end_by
        self._on_end = on_end
        self._started = False
        self._exhausted = False
        self._primed: Any = _NOTHING
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._wait_began = 0.0
        self._fired: str | None = None

    def __aiter__(self) -> StreamGuard[T]:
        return self

    def _due(self) -> float:
        """When the current wait for the upstream times out."""
        if not self._started:
            return self._first_by
        if self._idle is not None:
            return min(self._wait_began + self._idle, self._end_by)
        return self._end_by

    def _why(self) -> str:
        if not self._started:
            return "no first byte from the upstream in time"
        if self._idle is not None and self._wait_began + self._idle < self._end_by:
            return f"no stream chunk from the upstream for {self._idle:g} s (idle_timeout_seconds)"
        return "the upstream stream exceeded its total time (timeout_seconds)"

    def _check(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # not waiting for the upstream now; the next wait re-arms
        due = self._due()
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._fired = self._why()
        self._waiter.cancel()

    async def __anext__(self) -> T:
        if self._primed is not _NOTHING:
            item: T = self._primed
            self._primed = _NOTHING
            return item
        if self._exhausted:
            raise StopAsyncIteration
        self._wait_began = self._loop.time()
        due = self._due()
        if self._wait_began >= due:
            self._fail(UpstreamTimeoutError(f"provider {self._provider}: {self._why()}"))
        self._waiter = asyncio.current_task()
        if self._timer is None or due < self._timer.when():  # e.g. the first-byte bound gave way to idle
            self._disarm()
            self._timer = self._loop.call_at(due, self._check)
        try:
            item = await self._it.__anext__()
        except StopAsyncIteration:
            self._exhausted = True
            self._disarm()
            self._end(None)
            raise
        except asyncio.CancelledError as exc:
            waiter, fired = self._waiter, self._fired
            if fired is not None and waiter is not None and waiter.uncancel() == 0:
                self._fail(UpstreamTimeoutError(f"provider {self._provider}: {fired}"), exc)
            raise
        except ModelMuxError as exc:
            self._fail(exc)
        except Exception as exc:
            err = transport_error(self._provider, exc) or UpstreamError(
                f"provider {self._provider}: the stream failed: {type(exc).__name__}: {exc}"
            )
            self._fail(err, exc)
        finally:
            self._waiter = None
        self._started = True
        return item

    def _fail(self, err: ModelMuxError, cause: BaseException | None = None) -> NoReturn:
        self._exhausted = True
        self._disarm()
        self._end(err)
        if cause is None or cause is err:
            raise err
        raise err from cause

    async def prime(self) -> None:
        """Wait for the first item (within the first-byte bound) and keep it for the consumer."""
        try:
            self._primed = await self.__anext__()
        except StopAsyncIteration:
            pass

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _end(self, error: ModelMuxError | None) -> None:
        if self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end(error)

    async def aclose(self) -> None:
        self._exhausted = True
        self._primed = _NOTHING
        self._disarm()
        try:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end(None)
