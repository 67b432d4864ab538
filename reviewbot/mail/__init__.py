"""Mail input: parse messages, assemble series, render patches for git am."""

from reviewbot.mail.series import SeriesSet, assemble, read_messages, read_series

__all__ = ["SeriesSet", "assemble", "read_messages", "read_series"]
