"""Plan-quality evaluation: TaskBench records, metrics, and a resumable runner (``patchbay eval``)."""

from .metrics import Counts, Scores, edit_distance, record_links, score
from .runner import (
    format_table,
    load_graph_links,
    predict,
    read_predictions,
    run_predictions,
    scores_by_type,
    spec_registry,
)
from .taskbench import links_of, load_records, nodes_to_raw_tasks, plan_to_nodes

__all__ = [
    "Counts",
    "Scores",
    "edit_distance",
    "format_table",
    "links_of",
    "load_graph_links",
    "load_records",
    "nodes_to_raw_tasks",
    "plan_to_nodes",
    "predict",
    "read_predictions",
    "record_links",
    "run_predictions",
    "score",
    "scores_by_type",
    "spec_registry",
]
