"""One real Ray head for all Ray tests: a job API, 4 logical CPUs and one fake GPU.

The head is ``ray start --head --block`` in a child process; stopping that
process stops the head's own processes (nothing else on the machine). Token
auth is off (``RAY_AUTH_MODE=disabled``): an embedded ``ray.init()`` would
otherwise write ``~/.ray/auth_token`` and make later heads demand it. A token
file the tests leave behind is removed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
TOKEN = Path.home() / ".ray" / "auth_token"


@dataclass(frozen=True)
class RayHead:
    """Where the test head listens."""

    gcs_address: str
    job_address: str
    temp_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment for a child that talks to the head (no inherited RAY_ADDRESS)."""
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_ENV)
        env.update(extra)
        return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    token_existed = TOKEN.exists()
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    gcs_port, dashboard_port = _free_port(), _free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="pbray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    head = RayHead(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dashboard_port}", temp_dir)
    log = open(temp_dir / "head.log", "wb")
    process = subprocess.Popen(
        [
            "ray",
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            "--include-dashboard=true",
            "--num-cpus=4",
            "--num-gpus=1",
            "--object-store-memory=150000000",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=head.env(),
    )
    try:
        _wait_for_job_api(head, process)
        yield head
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not token_existed:
            TOKEN.unlink(missing_ok=True)


def _wait_for_job_api(head: RayHead, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"ray start exited with {process.returncode}: {(head.temp_dir / 'head.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{head.job_address}/api/version", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the Ray head did not come up: {(head.temp_dir / 'head.log').read_text()[-2000:]}")
