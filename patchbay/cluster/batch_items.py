"""The batch job's input: one request a line, checked line by line so one bad line costs only itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class BatchItem:
    """One line of the requests file.

    Attributes:
        id: the item's id (``"id"`` in the line, else ``line-N``): what resuming keys on.
        request: the request text.
        attachments: file paths (relative to the requests file), ``file://`` or ``http(s)://`` URIs.
        thread_id: items sharing a thread are one conversation and run in file order.
        line: the 1-based line number.
        problem: why the line cannot run; such items are recorded as failed, nothing else.
    """

    id: str
    request: str
    attachments: list[str] = field(default_factory=list)
    thread_id: str | None = None
    line: int = 0
    problem: str | None = None


def read_items(path: Path) -> list[BatchItem]:
    """Every non-empty line of ``path`` as a :class:`BatchItem`.

    Raises:
        InputError: the file cannot be read, or two lines share an id (resuming
            could not tell them apart), naming the lines.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the requests file {path}: {exc}") from exc
    items = [parse_line(text, number) for number, text in enumerate(lines, 1) if text.strip()]
    first_line: dict[str, int] = {}
    clashes = []
    for item in items:
        if item.id in first_line:
            clashes.append(f"{item.id!r} on lines {first_line[item.id]} and {item.line}")
        first_line.setdefault(item.id, item.line)
    if clashes:
        raise InputError(f"{path}: every request needs its own id, but " + "; ".join(clashes))
    return items


def parse_line(text: str, number: int) -> BatchItem:
    """One line as an item; a malformed line becomes an item carrying its ``problem``."""
    fallback_id = f"line-{number}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return BatchItem(fallback_id, "", line=number, problem=f"line {number} is not JSON: {exc.msg}")
    if not isinstance(data, dict):
        return BatchItem(fallback_id, "", line=number, problem=f"line {number} must be a JSON object")
    problems = []
    raw_id = data.get("id", fallback_id)
    valid_id = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id).strip()
    item_id = str(raw_id).strip() if valid_id else fallback_id
    if not valid_id:
        problems.append('"id" must be a non-empty string or a whole number')
    request = data.get("request")
    if not isinstance(request, str) or not request.strip():
        problems.append('"request" must be a non-empty string')
        request = ""
    attachments = data.get("attachments", [])
    if isinstance(attachments, str):
        attachments = [attachments]
    if not isinstance(attachments, list) or not all(isinstance(a, str) and a for a in attachments):
        problems.append('"attachments" must be a list of paths or URIs')
        attachments = []
    thread = data.get("thread_id")
    if thread is not None and not (isinstance(thread, str) and thread.strip()):
        problems.append('"thread_id" must be a non-empty string')
        thread = None
    unknown = sorted(set(data) - {"id", "request", "attachments", "thread_id"})
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)} (use id, request, attachments, thread_id)")
    problem = f"line {number}: " + "; ".join(problems) if problems else None
    return BatchItem(item_id, request, list(attachments), thread, number, problem)
