"""Renderers of a SeriesReview: text, JSON, HTML, mail replies and b4 check results."""
