"""Kernel-reviewer-style reply mails for one SeriesReview (work in progress)."""

from __future__ import annotations

from email.message import EmailMessage

from reviewbot.config import Settings
from reviewbot.pipeline import SeriesReview


def render_replies(review: SeriesReview, settings: Settings) -> list[EmailMessage]:
    """One reply per patch with findings, one to the cover for series-level results."""
    raise NotImplementedError("render_replies arrives shortly")
