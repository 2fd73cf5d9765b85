"""The batch job's output folder: an append-only results log that makes resuming exact.

``results.jsonl`` gets one line per finished item, written and fsynced before
the next item is counted as done. On restart the log is read back, a line torn
by a kill mid-write is cut off, and every id found there is skipped: an item is
done exactly when its line exists, so no item runs twice and none is lost.
A lock on the folder keeps two jobs from writing it at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError

RESULTS = "results.jsonl"
ERRORS = "errors.jsonl"
SUMMARY = "summary.json"
_LOCK = ".batch.lock"


class ResultLog:
    """The results of one batch output folder, opened for appending.

    Use it as a context manager: it holds the folder's lock while open.

    Raises:
        InputError: another batch process holds the folder.
    """

    def __init__(self, out: Path):
        self.out = out
        self.path = out / RESULTS
        self.records: dict[str, dict[str, Any]] = {}
        self._lock_fd: int | None = None

    def __enter__(self) -> ResultLog:
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(
                f"another batch (pid {holder}) is writing to {self.out}; wait for it to end or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        self.records = self._read()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _read(self) -> dict[str, dict[str, Any]]:
        """The complete lines of the log; a torn last line (a kill mid-write) is cut off the file."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
        records: dict[str, dict[str, Any]] = {}
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by an earlier kill, later followed by good ones
            if isinstance(record, dict) and "id" in record:
                records[str(record["id"])] = record
        return records

    def done(self, item_id: str) -> bool:
        return item_id in self.records

    def forget(self, ids: Iterable[str]) -> None:
        """Remove items' lines (to run failed items again), rewriting the log atomically."""
        drop = set(ids) & set(self.records)
        if not drop:
            return
        for item_id in drop:
            del self.records[item_id]
        _write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records.values()))

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished item; it is on disk when this returns."""
        line = (json.dumps(record) + "\n").encode()
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self.records[str(record["id"])] = record

    def write_error_manifest(self) -> Path:
        """``errors.jsonl``: every item that failed, or finished with failed tasks, and why."""
        lines = []
        for record in self.records.values():
            if record["status"] == "succeeded":
                continue
            failed_tasks = [
                {"task_id": t["task_id"], "tool": t["tool"], "status": t["status"], "error": t["error"]}
                for t in record.get("tasks", [])
                if t["status"] != "succeeded"
            ]
            entry = {"id": record["id"], "status": record["status"], "error": record.get("error")}
            lines.append(json.dumps({**entry, "failed_tasks": failed_tasks}) + "\n")
        path = self.out / ERRORS
        _write_atomic(path, "".join(lines))
        return path

    def summary(
        self, item_ids: list[str], *, ran: int, skipped: int, wall_s: float, interrupted: bool
    ) -> dict[str, Any]:
        """Counts over the input's items (this run and earlier ones), and this run's pace and task times."""
        records = [self.records[i] for i in item_ids if i in self.records]
        statuses = [r["status"] for r in records]
        per_tool: dict[str, list[float]] = {}
        retried = 0
        for record in records:
            for task in record.get("tasks", []):
                if task.get("seconds") is not None:
                    per_tool.setdefault(task["tool"], []).append(task["seconds"])
                retried += task.get("attempts", 1) > 1
        return {
            "items": len(item_ids),
            "succeeded": statuses.count("succeeded"),
            "partial": statuses.count("partial"),
            "failed": statuses.count("failed"),
            "not_done": len(item_ids) - len(records),
            "ran_this_time": ran,
            "skipped_as_done": skipped,
            "tasks_retried": retried,
            "wall_s": round(wall_s, 3),
            "items_per_s": round(ran / wall_s, 3) if wall_s > 0 else None,
            "median_task_s": {tool: round(statistics.median(v), 4) for tool, v in sorted(per_tool.items())},
            "interrupted": interrupted,
        }

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.out / SUMMARY
        _write_atomic(path, json.dumps(summary, indent=2) + "\n")
        return path


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
