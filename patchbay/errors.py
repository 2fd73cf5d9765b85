"""The error hierarchy: what goes back to the planner, what stops a task, what stops start-up.

Three families, because each is handled in a different place:

* :class:`PlanError` -- the LLM can fix it; the planner sends the message back
  to the model and asks again (a bounded number of times).
* :class:`ToolError` -- a tool call failed; it is recorded on its task and
  stops only the tasks that depend on it.
* :class:`ConfigError` -- a developer or operator mistake (a bad tool
  definition, a missing endpoint); raised at start-up with the fix in the text.

Everything else a user can provoke (a missing file, a path outside the
workspace, a corrupt attachment) is an :class:`InputError`.
"""

from __future__ import annotations

from collections.abc import Sequence


class PatchbayError(Exception):
    """Base of every error patchbay raises on purpose."""


class ConfigError(PatchbayError):
    """A configuration or tool-definition mistake, found at start-up."""


class ToolDefinitionError(ConfigError):
    """A tool definition is invalid; lists every problem at once."""

    def __init__(self, tool: str, problems: Sequence[str]):
        self.tool = tool
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"tool {tool!r} is not a valid tool:\n{lines}")


class DuplicateToolError(ConfigError):
    """Two tools claim one name."""

    def __init__(self, name: str, first: str, second: str):
        self.name, self.first, self.second = name, first, second
        super().__init__(
            f"two tools are named {name!r}: one from {first}, one from {second}; "
            "rename one of them or uninstall one package"
        )


class InputError(PatchbayError):
    """Something the user gave us is unusable: a missing, corrupt or mislabelled file."""


class WorkspaceError(InputError):
    """A handle or path points outside the workspace and the request's attachments."""


class UnknownArtifactError(InputError):
    """A handle names no artifact in the store."""


class PlanError(PatchbayError):
    """A plan the LLM can repair: the message goes back to the model verbatim."""


class PlanParseError(PlanError):
    """The LLM's output holds no JSON plan."""


class PlanValidationError(PlanError):
    """The plan parsed but is wrong; ``problems`` names each task and reason."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("the plan is invalid:\n" + "\n".join(f"- {p}" for p in self.problems))


class PlanningFailed(PatchbayError):
    """The planner gave up after its repair budget; carries the last error."""


class LLMError(PatchbayError):
    """The LLM endpoint is unreachable or answered with an error."""


class ToolError(PatchbayError):
    """A tool call failed for its own reasons; not retried."""


class TransientToolError(ToolError):
    """A tool call failed for a reason that may pass (a dropped connection, a dead worker): retried."""


class TaskTimeout(TransientToolError):
    """A task ran past its time limit."""
