"""The shape of one fixture spec (see fixture_specs.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    slug: str
    subject: str
    body: str
    edits: tuple[tuple[str, str, str], ...]  # (path, old text, new text)
    outcomes: dict[str, str]  # rule id -> "bad-01" | "ok-02" | "todo-01"

    @property
    def name(self) -> str:
        return self.slug

    @property
    def rules(self) -> dict[str, str]:
        return {rule: f"{prefix}-{self.slug}" for rule, prefix in self.outcomes.items()}
