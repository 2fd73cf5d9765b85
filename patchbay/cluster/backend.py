"""The Ray execution backend: each tool runs in a pool of Ray actors placed by its declared resources.

An actor loads its tool once (``setup()``) and serves many calls, from every
conversation and every plan; placement comes from :class:`~patchbay.tools.Resources`
(a fractional GPU share and memory held for the actor's life, CPUs scaled by
``RayOptions.cpu_share``). Artifacts stay in the shared workspace and move as
handles. Every tool runs on Ray, the cheap ones too; tools that call the
planner's LLM reach it from the actor through the same OpenAI-compatible
endpoint, which must therefore be reachable from the worker nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError, ToolError
from ..llm.client import ChatClient
from ..orchestrator.backends import ExecutionBackend
from ..tools import Registry, ToolSpec
from ..tools._invoke import TaskOutput, ToolCall
from . import runtime
from .options import RayOptions
from .pool import ActorPool
from .worker import LLMEndpoint, ToolSource

log = logging.getLogger(__name__)

_RESOURCE_KEYS = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


class RayBackend(ExecutionBackend):
    """Runs tool calls on Ray actors, one pool per tool.

    Args:
        workspace: the artifact store's directory; on a multi-node cluster, shared
            storage mounted at the same path on every node.
        address: the Ray cluster (``host:6379``, ``ray://host:10001``, ``auto``);
            None: ``$RAY_ADDRESS`` inside a Ray job, else a local Ray is started.
        options: pool sizes and placement rules (default: from ``PATCHBAY_RAY_*``).
        api_key: the LLM endpoint's key, handed to actors for ``ToolContext.generate``.
        llm_timeout_s: the actors' LLM request timeout.
        local_cpus: logical CPUs of a local Ray (default: the machine's cores).
        runtime_env: Ray runtime environment for the actors (e.g. ``py_modules``).
        log_to_driver: copy actor output to this process's stdout (the job log).

    Example:
        >>> async with Orchestrator(settings, backend=RayBackend(settings.workspace)) as patchbay:
        ...     answer = await patchbay.arun("make photo.png gray", ["photo.png"])
    """

    name = "ray"

    def __init__(
        self,
        workspace: Path | str,
        *,
        address: str | None = None,
        options: RayOptions | None = None,
        api_key: str | None = None,
        llm_timeout_s: float = 300.0,
        local_cpus: int | None = None,
        runtime_env: dict[str, Any] | None = None,
        log_to_driver: bool = False,
    ):
        self.workspace = Path(workspace).resolve()
        self.address = address
        self.options = options if options is not None else RayOptions.from_env()
        self._api_key = api_key
        self._llm_timeout_s = llm_timeout_s
        self._local_cpus = local_cpus
        self._runtime_env = runtime_env
        self._log_to_driver = log_to_driver
        self._llm: LLMEndpoint | None = None
        self._pools: dict[str, ActorPool] = {}
        self._discovered: Registry | None = None
        self._owns_ray = False
        self._gpu_as_cpu = False
        self._trimmer: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RayBackend:
        """A backend for ``settings``: its workspace, Ray address and LLM key; pools from the environment."""
        kwargs: dict[str, Any] = {
            "address": settings.ray_address,
            "api_key": settings.api_key,
            "llm_timeout_s": settings.llm_timeout_s,
        }
        kwargs.update(overrides)
        return cls(settings.workspace, **kwargs)

    # -- lifecycle -------------------------------------------------------------------
    def bind_llm(self, client: ChatClient) -> None:
        self._llm = LLMEndpoint(
            base_url=client.base_url,
            api_key=self._api_key,
            model=client.model,
            structured=client.structured,
            temperature=client.temperature,
            timeout_s=self._llm_timeout_s,
        )

    async def start(self) -> None:
        """Join (or start) Ray, and load the pools whose configured minimum is above zero.

        Raises:
            ConfigError: Ray is missing or the cluster cannot be reached.
        """
        self.workspace.mkdir(parents=True, exist_ok=True)
        started_local = self.address is None and not _in_ray_job()
        self._owns_ray = runtime.connect(
            self.address,
            num_cpus=self._local_cpus,
            runtime_env=self._runtime_env,
            log_to_driver=self._log_to_driver,
        )
        # A local Ray on a machine without GPUs runs GPU tools on the CPU, as the in-process
        # backend does; on a cluster they wait for a GPU node (an autoscaler can add one).
        self._gpu_as_cpu = self._owns_ray and started_local and not runtime.has_gpus()
        try:
            self._discovered = Registry.discover()
        except ConfigError as exc:  # a broken plugin: every tool then travels as its pickled spec
            log.warning("installed tools cannot be discovered (%s); tools are shipped to actors as specs", exc)
            self._discovered = Registry()
        for spec in self._discovered:
            if not spec.spec_only and self.options.pool_size(spec.name).min_size > 0:
                self._pool_for(spec)._rebalance()
        self._trimmer = asyncio.ensure_future(self._trim_idle())

    async def close(self) -> None:
        """Stop every actor; shut Ray down if this backend started or joined it."""
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        self._discovered = None
        if self._owns_ray:
            runtime.import_ray().shutdown()
            self._owns_ray = False

    # -- calls -----------------------------------------------------------------------
    async def run(self, spec: ToolSpec, call: ToolCall) -> TaskOutput:
        if self._discovered is None:
            raise ToolError("the Ray backend is not started; call start() first (the Orchestrator does)")
        if spec.spec_only:
            raise ToolError(f"{spec.name} is spec-only: it can be planned but not run")
        return await self._pool_for(spec).call(call)

    def pool(self, tool: str) -> ActorPool | None:
        """The pool serving ``tool``, once it has been used (for monitoring and tests)."""
        return self._pools.get(tool)

    def _pool_for(self, spec: ToolSpec) -> ActorPool:
        pool = self._pools.get(spec.name)
        if pool is None:
            actor_options = self.options.actor_options(spec.resources)
            if self._gpu_as_cpu and actor_options.pop("num_gpus", 0):
                log.info("%s declares a GPU share, but this local Ray has no GPU: it runs on the CPU", spec.name)
            pool = ActorPool(
                self._source(spec),
                self.options.pool_size(spec.name),
                actor_options,
                str(self.workspace),
                self._llm,
                make_room=self._make_room,
                queue_per_actor=self.options.queue_per_actor,
            )
            self._pools[spec.name] = pool
        return pool

    def _source(self, spec: ToolSpec) -> ToolSource:
        """By name where the actor's own ``Registry.discover()`` finds the same tool, else the spec itself."""
        discovered = self._discovered
        if discovered is not None and spec.name in discovered:
            if discovered.get(spec.name).implementation is spec.implementation:
                return ToolSource(spec.name)
        return ToolSource(spec.name, spec)

    # -- room on the cluster ---------------------------------------------------------
    def _make_room(self, needy: ActorPool) -> None:
        """Stop idle actors of other pools (above their minimum) when the new actor would not fit.

        Actors hold their resources while idle; without this, pools that served
        earlier requests could keep a later tool from ever being placed.
        """
        ray = runtime.import_ray()
        demand = {_RESOURCE_KEYS[k]: float(v) for k, v in needy.actor_options.items() if k in _RESOURCE_KEYS and v}
        available = dict(ray.available_resources())

        def lacking() -> set[str]:
            return {key for key, amount in demand.items() if available.get(key, 0.0) + 1e-9 < amount}

        while lacking():
            short = lacking()
            donors = [
                pool
                for pool in self._pools.values()
                if pool is not needy
                and any(_RESOURCE_KEYS.get(k) in short and v for k, v in pool.actor_options.items())
            ]
            freed = next((f for pool in donors for f in [pool.stop_idle(limit=1)] if f), None)
            if freed is None:
                if "GPU" in short and not ray.cluster_resources().get("GPU"):
                    log.warning("%s needs a GPU share and the cluster has no GPU yet: it waits for one", needy.tool)
                return
            for key, amount in freed[0].items():
                if key in _RESOURCE_KEYS:
                    available[_RESOURCE_KEYS[key]] = available.get(_RESOURCE_KEYS[key], 0.0) + float(amount)
            log.info("stopped an idle actor to make room for %s", needy.tool)

    async def _trim_idle(self) -> None:
        """Stop actors idle longer than ``idle_timeout_s`` (down to each pool's minimum)."""
        period = max(0.5, min(10.0, self.options.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            for pool in list(self._pools.values()):
                pool.stop_idle(older_than_s=self.options.idle_timeout_s)


def _in_ray_job() -> bool:
    """Inside ``ray job submit`` (or with ``RAY_ADDRESS`` set), Ray is joined, not started."""
    return bool(os.environ.get("RAY_ADDRESS"))
