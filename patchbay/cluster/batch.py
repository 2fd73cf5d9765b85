"""The batch job: a JSONL file of requests in, a JSONL file of answers out, resumable by request id.

Run it as a Ray job (or directly; without a cluster a local Ray starts)::

    ray job submit --working-dir . -- python -m patchbay.cluster.batch requests.jsonl --out /shared/out

Each input line is ``{"id": ..., "request": ..., "attachments": [...], "thread_id": ...}``
(only ``request`` is required). The output folder gets ``results.jsonl`` (one
line per item: answer, artifacts, plan, per-task timings, error), ``errors.jsonl``
(the items that failed and why) and ``summary.json``; progress goes to stdout,
which is the job log. Run the same command again after an interruption: items
already in ``results.jsonl`` are skipped, the rest run. ``--out`` must be on
storage the job's driver can write and the user can read (an absolute path on
shared storage for a cluster): a relative path would land in the job's copy
of the working directory.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import PatchbayError
from ..orchestrator import Orchestrator
from ..orchestrator.backends import ExecutionBackend
from .attachments import local_attachments
from .batch_items import BatchItem, read_items
from .batch_log import ResultLog

log = logging.getLogger(__name__)
Echo = Callable[[str], None]
EXIT_ERROR = 1


async def run_batch(
    requests: Path,
    out: Path,
    orchestrator: Orchestrator,
    *,
    concurrency: int = 4,
    retry_failed: bool = False,
    echo: Echo = print,
) -> dict[str, Any]:
    """Run every item of ``requests`` not yet in ``out``; returns the summary (also written to ``out``).

    Items of one thread run in file order; at most ``concurrency`` items are in
    flight. Each finished item is on disk before the next counts as done.

    Raises:
        InputError: the requests file is unreadable or has duplicate ids, or another
            batch holds ``out``.
    """
    items = read_items(requests)
    started = time.monotonic()
    with ResultLog(out) as results:
        if retry_failed:
            results.forget([i for i, r in results.records.items() if r["status"] == "failed"])
        todo = [item for item in items if not results.done(item.id)]
        skipped = len(items) - len(todo)
        echo(f"batch: {len(items)} items, {skipped} already done, {len(todo)} to run, {concurrency} at a time")
        progress = _Progress(len(items), skipped, echo)
        chains = collections.deque(_threads(todo))

        async def worker() -> None:
            # Each worker takes a whole thread at a time, so a conversation's turns stay in order.
            while chains:
                for item in chains.popleft():
                    record = await _run_item(item, orchestrator, requests.parent, out)
                    results.append(record)
                    progress.finished(record)

        interrupted = True
        try:
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
            interrupted = False
        finally:
            results.write_error_manifest()
            summary = results.summary(
                [item.id for item in items],
                ran=progress.ran,
                skipped=skipped,
                wall_s=time.monotonic() - started,
                interrupted=interrupted,
            )
            results.write_summary(summary)
            echo(_summary_line(summary, out))
    return summary


def _threads(items: list[BatchItem]) -> list[list[BatchItem]]:
    """Items grouped into chains: one per conversation thread (in file order), one per lone item."""
    chains: dict[str, list[BatchItem]] = {}
    for item in items:
        key = f"thread:{item.thread_id}" if item.thread_id else f"item:{item.id}"
        chains.setdefault(key, []).append(item)
    return list(chains.values())


async def _run_item(item: BatchItem, orchestrator: Orchestrator, base: Path, out: Path) -> dict[str, Any]:
    started = time.time()
    record: dict[str, Any] = {
        "id": item.id,
        "status": "failed",
        "request": item.request,
        "thread_id": item.thread_id,
        "answer": None,
        "artifacts": [],
        "plan": None,
        "tasks": [],
        "error": item.problem,
    }
    if item.problem is None:
        request_id = f"{_slug(item.id)}-{uuid.uuid4().hex[:6]}"
        try:
            files = await asyncio.to_thread(
                local_attachments, item.attachments, base, out / "downloads" / _slug(item.id)
            )
            answer = await orchestrator.arun(
                item.request, files, thread_id=item.thread_id or request_id, request_id=request_id
            )
        except PatchbayError as exc:
            record["error"] = str(exc)
        except Exception as exc:  # a bug on one item must not cost the others
            log.exception("item %s failed unexpectedly", item.id)
            record["error"] = f"{type(exc).__name__}: {exc}"
        else:
            record.update(
                status="partial" if answer.failed_tasks else "succeeded",
                thread_id=answer.thread_id,
                answer=answer.text,
                artifacts=[{"id": a.id, "mime": a.mime, "name": a.name, "path": str(a.path)} for a in answer.artifacts],
                plan=answer.plan.to_json(),
                tasks=[_task_record(r) for r in answer.results],
            )
    record["seconds"] = round(time.time() - started, 3)
    record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return record


def _task_record(result: Any) -> dict[str, Any]:
    seconds = None
    if result.started_at is not None and result.finished_at is not None:
        seconds = round(result.finished_at - result.started_at, 4)
    return {
        "task_id": result.task_id,
        "tool": result.tool,
        "status": result.status,
        "attempts": result.attempts,
        "seconds": seconds,
        "output": result.output,
        "error": result.error,
    }


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80] or "item"


class _Progress:
    """One log line per finished item: ``[done/total] id: status in seconds``."""

    def __init__(self, total: int, done: int, echo: Echo):
        self.total, self.done, self.ran, self.echo = total, done, 0, echo

    def finished(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.ran += 1
        line = f"[{self.done}/{self.total}] {record['id']}: {record['status']} in {record['seconds']:.1f} s"
        if record["tasks"]:
            line += f" ({len(record['tasks'])} tasks)"
        if record["error"]:
            line += f" - {' '.join(str(record['error']).split())[:200]}"
        self.echo(line)


def _summary_line(summary: dict[str, Any], out: Path) -> str:
    pace = f", {summary['items_per_s']} items/s" if summary["items_per_s"] else ""
    state = "interrupted" if summary["interrupted"] else "done"
    return (
        f"batch {state}: {summary['succeeded']} succeeded, {summary['partial']} partial, "
        f"{summary['failed']} failed, {summary['not_done']} not done of {summary['items']}; "
        f"this run: {summary['ran_this_time']} items in {summary['wall_s']:.1f} s{pace}; "
        f"results in {out}"
    )


# -- the job's command line -----------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m patchbay.cluster.batch", description="Run a JSONL file of patchbay requests (resumable)."
    )
    add_batch_options(parser)
    parser.add_argument(
        "--backend",
        choices=["ray", "in-process"],
        default="ray",
        help="where tools run (default: ray; inside a Ray job, the job's cluster)",
    )
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    return parser


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """The options the job and ``patchbay batch`` share."""
    parser.add_argument("requests", help="JSONL file: one {id, request, attachments, thread_id} object a line")
    parser.add_argument("--out", required=True, help="output folder: results.jsonl, errors.jsonl, summary.json")
    parser.add_argument("--concurrency", type=_positive, default=4, help="items in flight at once (default 4)")
    parser.add_argument("--workspace", help="artifact store (default: $PATCHBAY_WORKSPACE, else OUT/workspace)")
    parser.add_argument("--retry-failed", action="store_true", help="run items recorded as failed again")


def batch_workspace(args: argparse.Namespace) -> Path | None:
    """``--workspace``, else ``$PATCHBAY_WORKSPACE`` (None: Settings reads it), else OUT/workspace."""
    if args.workspace:
        return Path(args.workspace).resolve()
    if os.environ.get("PATCHBAY_WORKSPACE"):
        return None
    return Path(args.out).resolve() / "workspace"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


async def run_from_args(
    args: argparse.Namespace, settings: Settings, backend: ExecutionBackend | None = None, echo: Echo = print
) -> dict[str, Any]:
    """Open an orchestrator for ``settings`` and run the batch the parsed ``args`` describe; returns the summary."""
    async with Orchestrator(settings, backend=backend) as patchbay:
        return await run_batch(
            Path(args.requests).resolve(),
            Path(args.out).resolve(),
            patchbay,
            concurrency=args.concurrency,
            retry_failed=args.retry_failed,
            echo=echo,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m patchbay.cluster.batch`` (the Ray job's driver).

    Exits 0 once every item has its line in ``results.jsonl``, failed items
    included (they are listed in ``errors.jsonl``), so Ray marks the job
    SUCCEEDED; 1 when the batch could not run; 130 when stopped.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(workspace=batch_workspace(args), backend=args.backend, ray_address=args.address)
        if args.backend == "ray":
            from .backend import RayBackend

            backend: ExecutionBackend | None = RayBackend.from_settings(settings, log_to_driver=True)
        else:
            backend = None
        summary = asyncio.run(_until_stopped(run_from_args(args, settings, backend, echo=_echo)))
        return 0 if not summary["not_done"] else EXIT_ERROR
    except PatchbayError as exc:
        print(f"batch: error: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("batch: stopped; run the same command again to resume", file=sys.stderr, flush=True)
        return 130


async def _until_stopped(work: Any) -> dict[str, Any]:
    """Run ``work``; SIGTERM (``ray job stop``) cancels it so the summary is still written."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


def _echo(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
