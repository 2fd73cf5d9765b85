"""patchbay on Ray: tools served by pools of Ray actors, and batch jobs through ``ray job submit``.

* :class:`RayBackend` -- the execution backend (``patchbay run --backend ray``).
* ``python -m patchbay.cluster.batch requests.jsonl --out DIR`` -- the batch job.
* ``patchbay/cluster/configs/`` -- a Ray cluster launcher YAML and KubeRay manifests.

Importing this package does not import Ray; the names below load it on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ActorPool", "PoolSize", "RayBackend", "RayOptions", "backend_from_settings"]

_LAZY = {
    "ActorPool": ".pool",
    "PoolSize": ".options",
    "RayBackend": ".backend",
    "RayOptions": ".options",
}


def backend_from_settings(settings: Any) -> Any:
    """The execution backend ``settings.backend`` names (``in-process`` or ``ray``), for the UI and scripts."""
    from ..artifacts import ArtifactStore
    from ..orchestrator.backends import make_backend

    return make_backend(settings, ArtifactStore(settings.workspace))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'patchbay.cluster' has no attribute {name!r}")
