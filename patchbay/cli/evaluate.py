"""``patchbay eval taskbench``: plan every record, score it, print planner vs baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..config import Settings
from ..evaluation import (
    format_table,
    load_graph_links,
    load_records,
    run_predictions,
    scores_by_type,
    spec_registry,
)
from ..llm.connect import connect
from ..orchestrator.planner import Planner


def add_parser(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval", help="measure plan quality on a benchmark")
    benchmarks = evaluate.add_subparsers(dest="benchmark", required=True)
    taskbench = benchmarks.add_parser("taskbench", help="TaskBench records with gold tool graphs")
    taskbench.add_argument("--data", required=True, help="records, one JSON object a line")
    taskbench.add_argument("--tools", required=True, help="tool_desc.json")
    taskbench.add_argument("--graph", help="graph_desc.json: plans may only use its tool-to-tool links")
    taskbench.add_argument("--out", default="patchbay-eval", help="folder for the predictions (resumable)")
    taskbench.add_argument("--mode", choices=["planner", "baseline", "both"], default="both")
    taskbench.add_argument("--limit", type=int, help="only the first N records")
    taskbench.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    taskbench.add_argument("--base-url")
    taskbench.add_argument("--model")
    taskbench.add_argument("--embedded-model")


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(base_url=args.base_url, model=args.model, embedded_model=args.embedded_model)
    records = load_records(args.data)[: args.limit] if args.limit else load_records(args.data)
    registry = spec_registry(args.tools)
    links = load_graph_links(args.graph) if args.graph else None
    modes = ["planner", "baseline"] if args.mode == "both" else [args.mode]
    results = {}
    async with connect(settings) as client:
        planner = Planner(
            client, registry, include_spec_only=True, allowed_links=links, plan_format=settings.plan_format
        )
        for mode in modes:
            out = Path(args.out) / f"{mode}.jsonl"
            with tqdm(total=len(records), desc=mode, file=sys.stderr, unit="plan") as bar:
                predictions = await run_predictions(
                    records, mode, planner, out, concurrency=args.concurrency, on_done=lambda _: bar.update()
                )
                bar.update(len(predictions) - bar.n)
            results[mode] = scores_by_type(records, predictions)
            print(f"{mode} predictions: {out}", file=sys.stderr)
    print(format_table(results))
    return 0
