"""Read a Google-style docstring into a summary and per-argument descriptions."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Raises|Example|Examples|Yields|Note|Notes):\s*$")
_ARG = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass
class Docstring:
    summary: str = ""
    args: dict[str, str] = field(default_factory=dict)
    returns: str = ""


def parse_docstring(doc: str | None) -> Docstring:
    """Split a docstring into its summary, ``Args:`` entries and ``Returns:`` text."""
    text = inspect.cleandoc(doc or "")
    result = Docstring()
    summary_lines: list[str] = []
    section: str | None = None
    current_arg: str | None = None
    arg_indent = 0  # the indent of the current argument's first line; deeper lines continue it
    returns: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        header = _SECTION.match(line.strip()) if not raw.startswith((" ", "\t")) else None
        if header:
            section, current_arg = header.group(1), None
            continue
        if section is None:
            summary_lines.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            match = _ARG.match(stripped)
            if match and (current_arg is None or indent <= arg_indent):
                current_arg, arg_indent = match.group(1).lstrip("*"), indent
                result.args[current_arg] = match.group(2).strip()
            elif current_arg and stripped:
                result.args[current_arg] = f"{result.args[current_arg]} {stripped}".strip()
        elif section in ("Returns", "Return") and line.strip():
            returns.append(line.strip())
    paragraphs = "\n".join(summary_lines).strip().split("\n\n")
    result.summary = " ".join(" ".join(p.split()) for p in paragraphs if p.strip())
    result.returns = " ".join(returns)
    return result
