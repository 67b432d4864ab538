"""Exceptions that carry context, and the exit code each maps to at the CLI edge.

Exit codes (the CLI contract): 0 nothing to report, 1 findings or regressions,
2 bad input or usage, 3 infrastructure failure (tree, build, QEMU).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INFRA = 3


class ReviewbotError(Exception):
    """Base class; ``exit_code`` says how the CLI ends when this escapes a command."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # e.g. a log excerpt that explains the failure

    def __str__(self) -> str:
        return self.message


class BadInputError(ReviewbotError):
    """The user's input (mail, patch, rule file, config) is unusable."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, source: str = "", detail: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message, detail=detail)
        self.source = source
        self.reason = message  # without the source prefix


class ConfigError(BadInputError):
    """config.yaml (or an override) is invalid."""


class InfraError(ReviewbotError):
    """The kernel tree, the build or QEMU failed for reasons outside the series."""

    exit_code = EXIT_INFRA

    def __init__(
        self,
        message: str,
        *,
        command: list[str] | None = None,
        output: str = "",
        detail: str = "",
    ) -> None:
        super().__init__(message, detail=detail or _tail(output))
        self.command = command or []
        self.output = output


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
