"""The ``patchbay`` command: run a request, plan one (dry run), list the tools, run a batch.

Every failure ends with one line, ``patchbay: error: ...``, and a non-zero exit:
1 for errors, 2 for bad usage, 3 when an answer was written but some tasks failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..config import Settings
from ..errors import PatchbayError
from ..orchestrator import AnswerReady, Orchestrator
from ..tools import Registry
from . import batch, evaluate, index
from .progress import format_plan, print_event

EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patchbay", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def endpoint_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else embedded)")
        p.add_argument("--model", help="model name (default: $PATCHBAY_MODEL)")
        p.add_argument(
            "--embedded-model", help="bundled model when no endpoint is set (qwen2.5-coder-1.5b, smollm2-135m)"
        )
        p.add_argument(
            "--workspace",
            help="artifact store and conversations (default: $PATCHBAY_WORKSPACE or ./patchbay-workspace)",
        )

    run = sub.add_parser("run", help="plan and run a request, print the answer, write the files")
    run.add_argument("request")
    run.add_argument(
        "--attach", "-a", action="append", default=[], metavar="FILE", help="a file for the request (repeatable)"
    )
    run.add_argument("--thread", help="conversation id; reuse it for follow-up requests")
    run.add_argument(
        "--out", default="patchbay-out", help="where the answer's files are written (default: ./patchbay-out)"
    )
    run.add_argument("--json", action="store_true", help="print events and the answer as JSON lines")
    run.add_argument(
        "--backend",
        choices=["in-process", "ray"],
        help="where tools run (default: $PATCHBAY_BACKEND or in-process; --address implies ray)",
    )
    run.add_argument(
        "--address",
        help="Ray cluster for --backend ray (host:6379, ray://host:10001, auto); default: a local Ray",
    )
    endpoint_options(run)

    plan = sub.add_parser("plan", help="print the validated plan for a request without running it")
    plan.add_argument("request")
    plan.add_argument("--attach", "-a", action="append", default=[], metavar="FILE")
    plan.add_argument(
        "--tools", metavar="JSON", help="plan over spec-only tools from a JSON file (e.g. TaskBench tool_desc.json)"
    )
    endpoint_options(plan)

    tools = sub.add_parser("tools", help="list the tool catalog with provenance, resources and availability")
    tools.add_argument("--json", action="store_true")

    evaluate.add_parser(sub)
    index.add_parser(sub)
    batch.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``patchbay`` console script."""
    logging.basicConfig(level=os.environ.get("PATCHBAY_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.address and args.backend == "in-process":
            parser.error("--address names a Ray cluster; it needs --backend ray")
        if args.address:
            args.backend = "ray"
    try:
        if args.command == "tools":
            return _tools(args)
        if args.command == "eval":
            return asyncio.run(evaluate.run(args))
        if args.command == "index":
            return index.run(args)
        if args.command == "batch":
            return batch.run(args)
        settings = Settings.from_env(
            base_url=args.base_url,
            model=args.model,
            embedded_model=args.embedded_model,
            workspace=args.workspace,
        )
        if args.command == "plan":
            return asyncio.run(_plan(args, settings))
        settings = settings.with_overrides(backend=args.backend, ray_address=args.address)
        return asyncio.run(_run(args, settings))
    except PatchbayError as exc:
        print(f"patchbay: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("patchbay: interrupted", file=sys.stderr)
        return 130


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with Orchestrator(settings) as patchbay:
        thread = args.thread
        answer_event = None
        async for event in patchbay.astream(args.request, args.attach, thread_id=thread):
            print_event(event, sys.stderr if not args.json else sys.stdout, as_json=args.json)
            if isinstance(event, AnswerReady):
                answer_event = event
                thread = thread or event.request_id
        answer = await patchbay.last_answer(thread or "")
    written = _write_artifacts(answer.artifacts, Path(args.out)) if answer_event else []
    if args.json:
        print(json.dumps({"answer": answer.text, "thread": answer.thread_id, "files": [str(p) for p in written]}))
    else:
        print(answer.text)
        for path in written:
            print(f"  file: {path}")
        print(f"(thread {answer.thread_id}: pass --thread {answer.thread_id} to follow up)", file=sys.stderr)
    return EXIT_PARTIAL if answer.failed_tasks else 0


async def _plan(args: argparse.Namespace, settings: Settings) -> int:
    registry = Registry.discover() if not args.tools else Registry()
    if args.tools:
        registry.load_spec_file(args.tools)
    async with Orchestrator(settings, registry=registry, dry_run=bool(args.tools)) as patchbay:
        plan = await patchbay.aplan(args.request, args.attach)
    print(format_plan(plan.to_json()), file=sys.stderr)
    print(json.dumps(plan.to_json(), indent=2))
    return 0


def _tools(args: argparse.Namespace) -> int:
    registry = Registry.discover()
    rows = []
    for spec in registry:
        availability = spec.availability()
        rows.append(
            {
                "name": spec.name,
                "source": spec.source,
                "signature": ", ".join(f"{p.name}: {p.kind}{'' if p.required else '?'}" for p in spec.params)
                + f" -> {spec.output_kind}",
                "resources": spec.resources.describe(),
                "available": availability.ok,
                "reason": availability.reason,
                "description": spec.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "available" if row["available"] else f"unavailable: {row['reason']}"
        print(f"{row['name']}  ({row['signature']})")
        print(f"    from {row['source']}; {row['resources']}; {state}")
        print(f"    {row['description']}")
    return 0


def _write_artifacts(artifacts: list, out: Path) -> list[Path]:
    """Copy the answer's files to ``out`` atomically, named after their handles."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for artifact in artifacts:
        target = out / f"{artifact.id}{artifact.path.suffix}"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(artifact.path, tmp)
        os.replace(tmp, target)
        written.append(target)
    return written


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:397] + "..."


__all__ = ["build_parser", "format_plan", "main"]
