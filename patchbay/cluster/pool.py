"""A pool of Ray actors serving one tool: calls from every conversation share it.

Each actor runs one call at a time, so independent tasks of a plan land on
different actors at once. The pool grows on demand up to its maximum (an actor
Ray cannot place yet just stays pending while the others keep serving), keeps
its minimum loaded, and replaces an actor that dies: the calls that were on it
fail with :class:`~patchbay.errors.TransientToolError`, which the executor
retries, within its limit, on another actor.

When every actor is busy and the pool cannot grow, a call may be queued on the
least loaded actor (up to ``queue_per_actor`` calls each), in the actor's own
Ray mailbox: the actor then starts it the moment the previous call ends,
instead of idling for a round trip to this process. For cheap tools that round
trip is a large part of each call.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from ..errors import ToolError, TransientToolError
from ..tools._invoke import TaskOutput, ToolCall
from .options import PoolSize
from .worker import CallFailure, LLMEndpoint, ToolSource, ToolWorker, WorkerInfo

log = logging.getLogger(__name__)

_RemoteWorker: Any = None


def remote_worker_class() -> Any:
    """``ToolWorker`` as a Ray actor class (made once; one call at a time, never restarted by Ray)."""
    global _RemoteWorker
    if _RemoteWorker is None:
        _RemoteWorker = ray.remote(max_concurrency=1, max_restarts=0)(ToolWorker)
    return _RemoteWorker


@dataclass(eq=False)
class PooledActor:
    """One live actor of a pool and what the pool knows about it."""

    handle: Any
    info: WorkerInfo
    idle_since: float = field(default_factory=time.monotonic)
    in_flight: int = 0


class ActorPool:
    """The actors of one tool.

    Args:
        source: how actors obtain the tool.
        size: the minimum kept loaded and the maximum serving at once.
        actor_options: Ray resource options of each actor (``num_cpus``, ``num_gpus``, ``memory``).
        workspace: the shared artifact store directory.
        llm: the planner's endpoint for tools that call it.
        make_room: called before an actor is created, so the backend can stop
            idle actors of other pools when the cluster has no room for it.
        queue_per_actor: calls one actor may hold at once (one running, the
            rest waiting in its mailbox) once the pool is at its maximum.
    """

    def __init__(
        self,
        source: ToolSource,
        size: PoolSize,
        actor_options: dict[str, Any],
        workspace: str,
        llm: LLMEndpoint | None = None,
        make_room: Callable[[ActorPool], None] | None = None,
        queue_per_actor: int = 1,
    ):
        self.tool = source.name
        self.source = source
        self.size = size
        self.actor_options = dict(actor_options)
        self._workspace = workspace
        self._llm = llm
        self._make_room = make_room
        self._queue_per_actor = max(1, queue_per_actor)
        self._idle: list[PooledActor] = []
        self._busy: set[PooledActor] = set()
        self._waiters: collections.deque[asyncio.Future[PooledActor]] = collections.deque()
        self._spawns: dict[asyncio.Task[None], None] = {}  # insertion-ordered: the newest is cancelled first
        self._setup_failing = False
        self._closed = False

    # -- what the pool holds -------------------------------------------------------
    @property
    def live(self) -> int:
        """Actors started and not dead: idle or busy."""
        return len(self._idle) + len(self._busy)

    @property
    def starting(self) -> int:
        """Actors asked for and not ready yet (loading, or waiting for Ray to place them)."""
        return len(self._spawns)

    @property
    def in_flight(self) -> int:
        """Calls sent to actors and not finished: running, or waiting in an actor's mailbox."""
        return sum(actor.in_flight for actor in self._busy)

    def handles(self, *, busy: bool | None = None) -> list[Any]:
        """Actor handles: all live ones, or only the busy (``True``) or idle (``False``) ones."""
        chosen = list(self._busy) if busy else self._idle if busy is False else [*self._idle, *self._busy]
        return [actor.handle for actor in chosen]

    # -- calls ---------------------------------------------------------------------
    async def call(self, call: ToolCall) -> TaskOutput:
        """Run ``call`` on a free actor (starting one if the pool may grow).

        Raises:
            TransientToolError: the actor died during the call (it is replaced).
            ToolError, InputError, ...: the tool's own failure, as the tool raised it.
        """
        actor = await self._acquire()
        try:
            reply = await actor.handle.run.remote(call)
        except asyncio.CancelledError:
            # A timed-out call may still be running there: the actor cannot take another one.
            self._retire(actor)
            raise
        except RayActorError as exc:
            self._retire(actor)
            raise TransientToolError(
                f"the Ray worker serving {self.tool} (pid {actor.info.pid} on {actor.info.host}) died during the call: "
                f"{_reason(exc)}"
            ) from None
        except RayTaskError as exc:  # the call could not even be unpacked there; the actor is fine
            self._release(actor)
            raise ToolError(f"the Ray worker for {self.tool} could not run the call: {_reason(exc)}") from None
        except RayError as exc:
            self._retire(actor)
            raise TransientToolError(f"Ray lost the call to {self.tool}: {_reason(exc)}") from None
        except Exception as exc:  # the call could not be sent (an argument Ray cannot pickle)
            self._release(actor)
            raise ToolError(f"cannot send the call to {self.tool} to Ray: {type(exc).__name__}: {exc}") from None
        self._release(actor)
        if isinstance(reply, CallFailure):
            raise reply.to_exception()
        return reply

    async def _acquire(self) -> PooledActor:
        if self._closed:
            raise ToolError(f"the Ray backend is closed; {self.tool} cannot run")
        if self._idle:
            actor = self._idle.pop()  # the most recently used: its caches are warm
            self._busy.add(actor)
            actor.in_flight = 1
            return actor
        queued = self._least_loaded_busy()
        if queued is not None:
            queued.in_flight += 1
            return queued
        waiter: asyncio.Future[PooledActor] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._rebalance()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed over just as the caller gave up
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _least_loaded_busy(self) -> PooledActor | None:
        """A busy actor that may take one more call in its mailbox: only when the pool cannot grow."""
        if self._queue_per_actor == 1 or self._waiters or self.live + self.starting < self.size.max_size:
            return None
        open_actors = [actor for actor in self._busy if actor.in_flight < self._queue_per_actor]
        return min(open_actors, key=lambda actor: actor.in_flight, default=None)

    def _release(self, actor: PooledActor) -> None:
        """One call on ``actor`` ended: hand the slot to the longest-waiting caller, or park the actor as idle."""
        actor.in_flight = max(0, actor.in_flight - 1)
        if actor not in self._busy:  # retired meanwhile (another call on it saw it die)
            return
        if self._closed:
            self._busy.discard(actor)
            _kill(actor.handle)
            return
        # Fill the actor's mailbox too, but only when no new actor can come for the waiting callers.
        slots = 1 if self.live + self.starting < self.size.max_size else self._queue_per_actor
        while self._waiters and actor.in_flight < slots:
            waiter = self._waiters.popleft()
            if not waiter.done():
                actor.in_flight += 1
                waiter.set_result(actor)
        if actor.in_flight:
            return
        self._busy.discard(actor)
        actor.idle_since = time.monotonic()
        self._idle.append(actor)
        self._cancel_surplus_spawns()

    def _cancel_surplus_spawns(self) -> None:
        """Nobody waits: stop starting actors above the minimum, so they do not hold a place in Ray's queue."""
        surplus = self.starting - max(0, self.size.min_size - self.live)
        for task in list(self._spawns)[::-1][: max(0, surplus)]:
            task.cancel()

    def _retire(self, actor: PooledActor) -> None:
        """Drop and kill ``actor``; start a replacement if callers wait or the minimum is not met."""
        self._busy.discard(actor)
        if actor in self._idle:
            self._idle.remove(actor)
        _kill(actor.handle)
        self._rebalance()

    # -- growing -------------------------------------------------------------------
    def _rebalance(self) -> None:
        """Start as many actors as waiting callers (and the minimum) need, within the maximum."""
        if self._closed:
            return
        self._waiters = collections.deque(w for w in self._waiters if not w.done())
        wanted = len(self._waiters) - self.starting
        if not self._setup_failing:
            wanted = max(wanted, self.size.min_size - self.live - self.starting)
        room = self.size.max_size - self.live - self.starting
        for _ in range(min(wanted, room)):
            task = asyncio.ensure_future(self._spawn())
            self._spawns[task] = None
            task.add_done_callback(lambda done: self._spawns.pop(done, None))

    async def _spawn(self) -> None:
        handle = None
        failure: Exception
        try:
            if self._make_room is not None:
                self._make_room(self)
            handle = remote_worker_class().options(**self.actor_options).remote(self.source, self._workspace, self._llm)
            info = await handle.start.remote()
        except asyncio.CancelledError:
            if handle is not None:
                _kill(handle)
            raise
        except RayError as exc:  # the actor died while starting (killed, out of memory): worth another try
            info = None
            failure = TransientToolError(f"a Ray worker for {self.tool} could not start: {_reason(exc)}")
        except Exception as exc:  # Ray refused the request itself (bad options): not worth retrying
            info = None
            failure = ToolError(f"Ray cannot create a worker for {self.tool}: {type(exc).__name__}: {exc}")
        self._spawns.pop(asyncio.current_task(), None)  # no longer starting, whatever comes next
        if isinstance(info, WorkerInfo):
            self._setup_failing = False
            log.info("%s: actor ready (pid %s on %s)", self.tool, info.pid, info.host)
            actor = PooledActor(handle, info, in_flight=1)
            self._busy.add(actor)
            self._release(actor)
            return
        if isinstance(info, CallFailure):
            failure = CallFailure(info.error_type, f"{self.tool} could not be set up: {info.message}").to_exception()
        if handle is not None:
            _kill(handle)
        self._setup_failing = True
        log.warning("%s: %s", self.tool, failure)
        # One waiting caller learns why; the others get their own attempt (each attempt ends one caller).
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(failure)
                break
        self._rebalance()

    # -- shrinking -----------------------------------------------------------------
    def stop_idle(self, *, older_than_s: float = 0.0, limit: int | None = None) -> list[dict[str, Any]]:
        """Stop idle actors above the minimum, oldest first; returns the options (resources) each held."""
        now = time.monotonic()
        extra = self.live - self.size.min_size
        if limit is not None:
            extra = min(extra, limit)
        freed = []
        for actor in sorted(self._idle, key=lambda a: a.idle_since):
            if extra <= 0:
                break
            if now - actor.idle_since < older_than_s:
                continue
            self._idle.remove(actor)
            _kill(actor.handle)
            freed.append(self.actor_options)
            extra -= 1
        return freed

    async def close(self) -> None:
        """Kill every actor and fail the callers still waiting."""
        self._closed = True
        for task in list(self._spawns):
            task.cancel()
        if self._spawns:
            await asyncio.gather(*self._spawns, return_exceptions=True)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ToolError(f"the Ray backend closed before {self.tool} could run"))
        self._waiters.clear()
        for actor in [*self._idle, *self._busy]:
            _kill(actor.handle)
        self._idle.clear()
        self._busy.clear()


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except (RayError, ValueError) as exc:  # already gone, or Ray itself shut down
        log.debug("could not kill actor: %s", exc)


def _reason(exc: BaseException) -> str:
    """The last line of Ray's multi-line message: the cause, without actor ids and tracebacks."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
