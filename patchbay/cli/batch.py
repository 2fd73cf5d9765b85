"""``patchbay batch``: run a JSONL file of requests, as a Ray job (``--address``) or right here."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..config import Settings

EXIT_ERROR, EXIT_PARTIAL = 1, 3


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..cluster.batch import add_batch_options

    batch = sub.add_parser(
        "batch",
        help="run a JSONL file of requests (resumable): as a Ray job with --address, else locally",
        description=(
            "Run one request per JSONL line ({id, request, attachments, thread_id}); results.jsonl, "
            "errors.jsonl and summary.json go to --out. Run it again to resume."
        ),
    )
    add_batch_options(batch)
    batch.add_argument(
        "--address",
        help="the Ray job API (dashboard) address, e.g. http://HEAD:8265: submit a Ray job there; "
        "without it the batch runs in this process on a local Ray",
    )
    batch.add_argument(
        "--working-dir",
        default=".",
        help="folder uploaded with the job (default: .); relative paths in the requests file resolve there",
    )
    batch.add_argument("--no-wait", action="store_true", help="submit and return without following the job log")
    batch.add_argument(
        "--backend",
        choices=["ray", "in-process"],
        default="ray",
        help="for a local run: where tools run (default: ray, a local Ray)",
    )
    batch.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else embedded)")
    batch.add_argument("--model", help="model name (default: $PATCHBAY_MODEL)")
    return batch


def run(args: argparse.Namespace) -> int:
    """Submit or run the batch; 0 when every item succeeded, 3 when some failed, 1 when the job failed."""
    if args.address:
        return _submit(args)
    from ..cluster.batch import batch_workspace, run_from_args

    settings = Settings.from_env(
        base_url=args.base_url, model=args.model, workspace=batch_workspace(args), backend=args.backend
    )
    summary = asyncio.run(run_from_args(args, settings, echo=_echo))
    return EXIT_PARTIAL if summary["failed"] or summary["partial"] or summary["not_done"] else 0


def _submit(args: argparse.Namespace) -> int:
    from ..cluster.submit import submit_batch

    extra = {k: v for k, v in (("OPENAI_BASE_URL", args.base_url), ("PATCHBAY_MODEL", args.model)) if v}
    _, status, summary = submit_batch(
        args.address,
        Path(args.requests),
        Path(args.out),
        working_dir=Path(args.working_dir),
        concurrency=args.concurrency,
        retry_failed=args.retry_failed,
        workspace=Path(args.workspace).resolve() if args.workspace else None,
        extra_env=extra,
        wait=not args.no_wait,
        echo=_echo,
    )
    if args.no_wait:
        return 0
    if status != "SUCCEEDED":
        return EXIT_ERROR
    if summary is not None and (summary["failed"] or summary["partial"] or summary["not_done"]):
        return EXIT_PARTIAL
    return 0


def _echo(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
