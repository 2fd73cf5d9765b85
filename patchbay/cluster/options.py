"""How the Ray backend sizes and places its actor pools, read from the environment or given in code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..tools import Resources

MIB = 1024 * 1024


@dataclass(frozen=True)
class PoolSize:
    """How many actors one tool may have: ``min_size`` stay loaded, up to ``max_size`` serve at once."""

    min_size: int = 0
    max_size: int = 2

    def __post_init__(self) -> None:
        if self.min_size < 0 or self.max_size < 1 or self.min_size > self.max_size:
            raise ConfigError(
                f"pool size {self.min_size}:{self.max_size} is not usable; "
                "give MIN:MAX with 0 <= MIN <= MAX and MAX >= 1"
            )


@dataclass(frozen=True)
class RayOptions:
    """Pool sizes and placement rules of the Ray backend.

    Attributes:
        default_pool: the pool size of tools not named in ``pools``.
        pools: per-tool pool sizes, by tool name.
        cpu_share: the fraction of a tool's declared ``Resources.cpus`` an actor
            reserves for its whole life (Ray cannot reserve CPUs per call on an
            actor); 1.0 is honest, lower values pack more idle actors on a node.
        idle_timeout_s: idle actors above their pool's minimum stop after this long.
        queue_per_actor: calls one actor may hold at once when its pool is at its
            maximum and every actor is busy: one running, the others waiting in
            the actor's mailbox, so it never idles for a round trip between
            calls. 1 turns queueing off (a call then waits for the first free actor).

    Environment variables:
        PATCHBAY_RAY_POOLS: ``tool=MIN:MAX`` pairs separated by commas, e.g.
            ``image_caption=1:2,image_resize=0:4``; ``*=MIN:MAX`` sets the default.
        PATCHBAY_RAY_CPU_SHARE: ``cpu_share`` (default 1.0).
        PATCHBAY_RAY_IDLE_S: ``idle_timeout_s`` (default 60).
        PATCHBAY_RAY_QUEUE: ``queue_per_actor`` (default 2).
    """

    default_pool: PoolSize = field(default_factory=PoolSize)
    pools: Mapping[str, PoolSize] = field(default_factory=dict)
    cpu_share: float = 1.0
    idle_timeout_s: float = 60.0
    queue_per_actor: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.cpu_share <= 1:
            raise ConfigError(f"cpu_share={self.cpu_share}; use a fraction between 0 and 1")
        if self.idle_timeout_s <= 0:
            raise ConfigError(f"idle_timeout_s={self.idle_timeout_s}; use a positive number of seconds")
        if self.queue_per_actor < 1 or self.queue_per_actor != int(self.queue_per_actor):
            raise ConfigError(f"queue_per_actor={self.queue_per_actor}; use a whole number, 1 or more")

    def pool_size(self, tool: str) -> PoolSize:
        return self.pools.get(tool, self.default_pool)

    def actor_options(self, resources: Resources) -> dict[str, float | int]:
        """Ray actor options for a tool's declared resources: GPU share and memory held for life."""
        options: dict[str, float | int] = {"num_cpus": round(resources.cpus * self.cpu_share, 4)}
        if resources.gpu:
            options["num_gpus"] = resources.gpu
        if resources.memory_mb:
            options["memory"] = resources.memory_mb * MIB
        return options

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RayOptions:
        """Options from ``PATCHBAY_RAY_*`` variables.

        Raises:
            ConfigError: a variable is malformed; the message shows the expected form.
        """
        env = os.environ if env is None else env
        pools = parse_pools(env.get("PATCHBAY_RAY_POOLS", ""))
        default = pools.pop("*", PoolSize())
        return cls(
            default_pool=default,
            pools=pools,
            cpu_share=_number(env, "PATCHBAY_RAY_CPU_SHARE", 1.0),
            idle_timeout_s=_number(env, "PATCHBAY_RAY_IDLE_S", 60.0),
            queue_per_actor=_whole_number(env, "PATCHBAY_RAY_QUEUE", 2),
        )


def parse_pools(text: str) -> dict[str, PoolSize]:
    """``"a=0:2, b=1:4"`` -> ``{"a": PoolSize(0, 2), "b": PoolSize(1, 4)}``.

    Raises:
        ConfigError: an entry is not ``name=MIN:MAX`` with whole numbers.
    """
    pools: dict[str, PoolSize] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, sizes = entry.partition("=")
        low, _, high = sizes.partition(":")
        if not (name.strip() and low.strip().isdigit() and high.strip().isdigit()):
            raise ConfigError(
                f"PATCHBAY_RAY_POOLS entry {entry!r} is not TOOL=MIN:MAX (e.g. image_caption=1:2, or *=0:4)"
            )
        pools[name.strip()] = PoolSize(int(low), int(high))
    return pools


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}; use a number") from None


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    value = float(_number(env, name, default))
    if not value.is_integer():
        raise ConfigError(f"{name}={env.get(name)!r}; use a whole number")
    return int(value)
