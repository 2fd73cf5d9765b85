"""Joining a Ray cluster, or starting a local one when no address is given."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import ConfigError


def import_ray() -> Any:
    """Ray itself, with usage stats off (they try the network).

    Raises:
        ConfigError: Ray is not installed.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"the ray backend needs Ray: pip install 'ray[default]' ({exc})") from exc
    return ray


def connect(
    address: str | None,
    *,
    num_cpus: int | None = None,
    runtime_env: dict[str, Any] | None = None,
    log_to_driver: bool = False,
) -> bool:
    """Connect this process to Ray; returns whether this call did it (and so should shut it down).

    Args:
        address: a cluster (``host:6379``, ``ray://host:10001``, ``auto``). None:
            ``$RAY_ADDRESS`` (set inside ``ray job submit`` jobs), else a new
            local Ray on this machine, without a dashboard.
        num_cpus: logical CPUs of a local Ray (default: the machine's cores).
        runtime_env: Ray's runtime environment for this driver's workers.
        log_to_driver: copy actors' output to this process's stdout (the job log).

    Raises:
        ConfigError: Ray is missing or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": log_to_driver,
        "runtime_env": runtime_env,
    }
    local = address is None and not os.environ.get("RAY_ADDRESS")
    try:
        if local:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or os.environ.get("RAY_ADDRESS")
        raise ConfigError(
            f"cannot connect to the Ray cluster at {where}: {exc}. Start one with 'ray start --head', "
            "or leave the address out to start a local Ray"
        ) from exc
    return True


def has_gpus() -> bool:
    """Whether the connected cluster has any GPU right now."""
    ray = import_ray()
    return bool(ray.cluster_resources().get("GPU", 0))
