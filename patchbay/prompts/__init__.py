"""Prompt templates, kept as files; :func:`render` fills them in."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

_HERE = Path(__file__).parent


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, **variables: Any) -> str:
    """Render ``patchbay/prompts/<name>.j2`` with ``variables``; a missing variable is an error."""
    return _environment().get_template(f"{name}.j2").render(**variables).strip()


__all__ = ["render"]
