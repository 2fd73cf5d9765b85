"""Run a planner over TaskBench records: resumable predictions, then scores per record type.

Two modes run the same model:
  planner: patchbay's product planner (constrained output, validation, repair).
  baseline: one plain TaskBench-style prompt, strict JSON, no constraint or repair.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from ..errors import LLMError, PatchbayError
from ..orchestrator.planner import Planner
from ..prompts import render
from ..tools import Registry
from .metrics import Scores, score
from .taskbench import links_of, plan_to_nodes

Mode = Literal["planner", "baseline"]


async def predict(record: dict[str, Any], mode: Mode, planner: Planner) -> dict[str, Any]:
    """One prediction: TaskBench nodes and links, or the error that stopped planning."""
    started = time.perf_counter()
    prediction: dict[str, Any] = {"id": record["id"], "type": record.get("type"), "mode": mode}
    try:
        if mode == "planner":
            plan = await planner.aplan(record["user_request"], request_id=str(record["id"]))
            prediction["task_nodes"] = plan_to_nodes(plan)
            prediction["task_links"] = links_of(plan)
        else:
            prediction.update(await _baseline(record["user_request"], planner))
        prediction["error"] = None
    except LLMError:
        raise  # the endpoint is down: stop the run rather than score it as the model's failure
    except PatchbayError as exc:
        prediction["error"] = str(exc)
    prediction["seconds"] = round(time.perf_counter() - started, 3)
    return prediction


async def _baseline(request: str, planner: Planner) -> dict[str, Any]:
    prompt = render("taskbench_baseline", tools=planner.catalog(), request=request)
    reply = await planner.client.acomplete([{"role": "user", "content": prompt}])
    start, end = reply.find("{"), reply.rfind("}")
    try:
        result = json.loads(reply[start : end + 1]) if start >= 0 else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or not isinstance(result.get("task_nodes"), list):
        raise _BaselineUnparsable(f"no JSON task_nodes in the reply: {reply[:120]!r}")
    nodes = [
        {"task": name, "arguments": n.get("arguments", [])} for n in result["task_nodes"] if (name := _tool_name(n))
    ]
    links = [
        {"source": link["source"], "target": link["target"]}
        for link in result.get("task_links") or []
        if isinstance(link, dict) and isinstance(link.get("source"), str) and isinstance(link.get("target"), str)
    ]
    return {"task_nodes": nodes, "task_links": links}


def _tool_name(node: Any) -> str | None:
    """The tool a baseline node names, however the model spelled the key ("task", "tool", "id", a nested object)."""
    if not isinstance(node, dict):
        return None
    for key in ("task", "tool", "name", "id"):
        value = node.get(key)
        if isinstance(value, dict):
            value = value.get("id") or value.get("name")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class _BaselineUnparsable(PatchbayError):
    pass


async def run_predictions(
    records: list[dict[str, Any]],
    mode: Mode,
    planner: Planner,
    out: Path,
    *,
    concurrency: int = 1,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Predict every record not already in ``out`` (JSONL, appended as each finishes); return all.

    Interrupting and rerunning resumes: ids already written are not planned again.
    """
    done = {p["id"]: p for p in read_predictions(out)}
    todo = [r for r in records if r["id"] not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(record: dict[str, Any]) -> None:
        async with semaphore:
            prediction = await predict(record, mode, planner)
        with out.open("a") as fh:
            fh.write(json.dumps(prediction) + "\n")
        done[record["id"]] = prediction
        if on_done is not None:
            on_done(prediction)

    await asyncio.gather(*(one(r) for r in todo))
    return [done[r["id"]] for r in records if r["id"] in done]


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Predictions already written; a line cut short by an interruption is ignored."""
    if not path.exists():
        return []
    predictions = []
    for line in path.read_text().splitlines():
        try:
            predictions.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return predictions


def scores_by_type(records: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> dict[str, Scores]:
    """Scores overall and per record type (single / chain / dag); a missing prediction is a failure."""
    by_id = {p["id"]: p for p in predictions}
    groups: dict[str, list[dict[str, Any]]] = {"all": records}
    for record in records:
        groups.setdefault(record.get("type", "unknown"), []).append(record)
    return {name: score((r, by_id.get(r["id"])) for r in group) for name, group in groups.items()}


def format_table(results: dict[Mode, dict[str, Scores]]) -> str:
    """A Markdown table: one row per mode and record type, and the planner/baseline ratio."""
    header = "| mode | type | records | node F1 | link F1 | edit distance | failed % | median s |"
    lines = [header, "|" + "---|" * 8]
    for mode, groups in results.items():
        for name, s in groups.items():
            lines.append(
                f"| {mode} | {name} | {s.records} | {s.node_f1:.2f} | {s.link_f1:.2f} | "
                f"{s.edit_distance:.3f} | {s.failure_rate:.1f} | {s.median_seconds:.1f} |"
            )
    if "planner" in results and "baseline" in results:
        lines.append("")
        lines.append("| type | node F1 ratio | link F1 ratio |")
        lines.append("|---|---|---|")
        for name, p in results["planner"].items():
            b = results["baseline"].get(name)
            if b is None:
                continue
            node = f"{p.node_f1 / b.node_f1:.2f}x" if b.node_f1 else "n/a"
            link = f"{p.link_f1 / b.link_f1:.2f}x" if b.link_f1 else "n/a"
            lines.append(f"| {name} | {node} | {link} |")
    return "\n".join(lines)


def load_graph_links(path: Path | str) -> set[tuple[str, str]]:
    """(source, target) pairs from TaskBench's ``graph_desc.json``."""
    data = json.loads(Path(path).read_text())
    return {(link["source"], link["target"]) for link in data.get("links", [])}


def spec_registry(tools_path: Path | str) -> Registry:
    registry = Registry()
    registry.load_spec_file(tools_path, source="taskbench")
    return registry


__all__ = [
    "format_table",
    "load_graph_links",
    "predict",
    "read_predictions",
    "run_predictions",
    "scores_by_type",
    "spec_registry",
]
