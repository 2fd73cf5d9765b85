"""TaskBench's plan-quality metrics: node F1, link F1 and normalized edit distance.

Node F1 compares the set of tool names per record, link F1 the set of
(source tool, target tool) pairs; both are micro-averaged over all records, as
TaskBench does with scikit-learn's multi-label binarizer. A failed plan counts
as an empty prediction: it adds every gold node and link as a miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Counts:
    """True positives, predicted and gold totals of one metric."""

    tp: int = 0
    predicted: int = 0
    gold: int = 0

    def add(self, predicted: set, gold: set) -> None:
        self.tp += len(predicted & gold)
        self.predicted += len(predicted)
        self.gold += len(gold)

    @property
    def precision(self) -> float:
        return self.tp / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Scores:
    """Scores of a set of records; all percentages except ``edit_distance`` (0 to 1, lower is better)."""

    records: int = 0
    failures: int = 0
    nodes: Counts = field(default_factory=Counts)
    links: Counts = field(default_factory=Counts)
    edit_distance_sum: float = 0.0
    seconds: list[float] = field(default_factory=list)

    @property
    def node_f1(self) -> float:
        return 100 * self.nodes.f1

    @property
    def link_f1(self) -> float:
        return 100 * self.links.f1

    @property
    def edit_distance(self) -> float:
        return self.edit_distance_sum / self.records if self.records else 0.0

    @property
    def failure_rate(self) -> float:
        return 100 * self.failures / self.records if self.records else 0.0

    @property
    def median_seconds(self) -> float:
        if not self.seconds:
            return 0.0
        ordered = sorted(self.seconds)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def record_links(nodes: Sequence[dict]) -> set[tuple[str, str]]:
    """(source tool, target tool) pairs from ``<node-j>`` references in TaskBench task nodes."""
    import re

    links = set()
    for node in nodes:
        arguments = node.get("arguments", [])
        values = arguments.values() if isinstance(arguments, dict) else arguments
        for value in values:
            for j in re.findall(r"<node-(\d+)>", str(value)):
                if int(j) < len(nodes):
                    links.add((nodes[int(j)]["task"], node["task"]))
    return links


def edit_distance(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """Levenshtein distance between two tool-name sequences, divided by the longer length."""
    if not predicted and not gold:
        return 0.0
    previous = list(range(len(gold) + 1))
    for i, p in enumerate(predicted, 1):
        current = [i]
        for j, g in enumerate(gold, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (p != g)))
        previous = current
    return previous[-1] / max(len(predicted), len(gold))


def score(pairs: Iterable[tuple[dict, dict | None]]) -> Scores:
    """Score (gold record, prediction) pairs; a None prediction is a failed plan.

    Gold records carry TaskBench's ``task_nodes`` and ``task_links``; predictions
    carry ``task_nodes``, and ``task_links`` (derived from their ``<node-j>``
    references when absent), and optionally ``seconds``.
    """
    scores = Scores()
    for gold, predicted in pairs:
        scores.records += 1
        gold_nodes = gold.get("task_nodes", [])
        gold_links = {(link["source"], link["target"]) for link in gold.get("task_links", [])}
        if predicted is None or predicted.get("error"):
            scores.failures += 1
            predicted_nodes: list[dict] = []
            predicted_links: set[tuple[str, str]] = set()
        else:
            predicted_nodes = predicted.get("task_nodes", [])
            if "task_links" in predicted:
                predicted_links = {(link["source"], link["target"]) for link in predicted["task_links"]}
            else:
                predicted_links = record_links(predicted_nodes)
        scores.nodes.add({n["task"] for n in predicted_nodes}, {n["task"] for n in gold_nodes})
        scores.links.add(predicted_links, gold_links)
        scores.edit_distance_sum += edit_distance([n["task"] for n in predicted_nodes], [n["task"] for n in gold_nodes])
        if predicted is not None and predicted.get("seconds") is not None:
            scores.seconds.append(float(predicted["seconds"]))
    return scores
