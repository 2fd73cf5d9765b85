"""``patchbay batch --address``: submit the batch job to a Ray cluster's job API and follow its log.

The same command a user could type (``ray job submit --working-dir . -- python -m
patchbay.cluster.batch ...``), sent through :class:`ray.job_submission.JobSubmissionClient`.
The LLM endpoint and ``PATCHBAY_*`` settings of the submitting shell travel as
the job's environment variables; note that anyone who can read the job's
details on the dashboard can read them, the API key included.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .batch_log import SUMMARY
from .runtime import import_ray

FORWARDED_PREFIXES = ("PATCHBAY_",)
FORWARDED_NAMES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "HF_HUB_OFFLINE", "HF_HOME")


def job_entrypoint(
    requests: Path, out: Path, *, working_dir: Path, concurrency: int, retry_failed: bool, workspace: Path | None
) -> str:
    """The job's command line: the requests file relative to the working dir when inside it, else absolute."""
    requests = requests.resolve()
    shown = requests.relative_to(working_dir) if requests.is_relative_to(working_dir) else requests
    argv = ["python", "-m", "patchbay.cluster.batch", str(shown), "--out", str(out)]
    argv += ["--concurrency", str(concurrency)]
    if workspace is not None:
        argv += ["--workspace", str(workspace)]
    if retry_failed:
        argv.append("--retry-failed")
    return shlex.join(argv)


def job_runtime_env(working_dir: Path, out: Path, env: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, Any]:
    """Working dir (without the output folder, if it lies inside) and the forwarded environment."""
    env_vars = {k: v for k, v in env.items() if k.startswith(FORWARDED_PREFIXES) or k in FORWARDED_NAMES}
    env_vars.update(extra)
    if "PATCHBAY_WORKSPACE" in env_vars:
        # Relative to this shell, not to the job's copy of the working directory.
        env_vars["PATCHBAY_WORKSPACE"] = str(Path(env_vars["PATCHBAY_WORKSPACE"]).resolve())
    env_vars.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runtime_env: dict[str, Any] = {"working_dir": str(working_dir), "env_vars": env_vars}
    if out.is_relative_to(working_dir) and out != working_dir:
        # Otherwise a resubmission would upload the previous run's results and workspace.
        runtime_env["excludes"] = [f"/{out.relative_to(working_dir).as_posix()}"]
    return runtime_env


def submit_batch(
    address: str,
    requests: Path,
    out: Path,
    *,
    working_dir: Path,
    concurrency: int = 4,
    retry_failed: bool = False,
    workspace: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    wait: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[str, str, dict[str, Any] | None]:
    """Submit the batch as a Ray job; with ``wait``, stream its log until it ends.

    Returns:
        (job id, final status such as ``SUCCEEDED`` or ``PENDING`` without wait,
        the summary the job wrote, if ``out`` is readable here).

    Raises:
        ConfigError: Ray is missing, or the job API at ``address`` cannot be reached.
    """
    import_ray()
    from ray.job_submission import JobSubmissionClient

    working_dir = working_dir.resolve()
    out = out.resolve()
    try:
        client = JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach the Ray job API at {address}: {exc}; give the dashboard address, e.g. http://HEAD:8265"
        ) from exc
    entrypoint = job_entrypoint(
        requests, out, working_dir=working_dir, concurrency=concurrency, retry_failed=retry_failed, workspace=workspace
    )
    runtime_env = job_runtime_env(working_dir, out, os.environ, extra_env or {})
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
    echo(f"submitted Ray job {job_id}: {entrypoint}")
    if not wait:
        return job_id, str(client.get_job_status(job_id)), None
    asyncio.run(_follow(client, job_id, echo))
    status = _final_status(client, job_id)
    summary_path = out / SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    if status != "SUCCEEDED":
        info = client.get_job_info(job_id)
        echo(f"Ray job {job_id} ended {status}: {info.message or 'see the log above'}")
    return job_id, status, summary


async def _follow(client: Any, job_id: str, echo: Callable[[str], None]) -> None:
    async for chunk in client.tail_job_logs(job_id):
        for line in chunk.splitlines():
            echo(line)


def _final_status(client: Any, job_id: str, timeout_s: float = 30.0) -> str:
    """The job's status once terminal (the log can end a moment before the status settles)."""
    deadline = time.monotonic() + timeout_s
    status = client.get_job_status(job_id)
    while not status.is_terminal() and time.monotonic() < deadline:
        time.sleep(0.2)
        status = client.get_job_status(job_id)
    return str(status.value if hasattr(status, "value") else status)
