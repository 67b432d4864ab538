"""Prometheus text exposition (format 0.0.4) without a client library.

Counters live in the HTTP process (reset at restart, as Prometheus expects of counters);
gauges of mails, series and runs per state are read from the store at each scrape, so they
are right whichever process did the work.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Acknowledgement latency buckets (seconds): the target is p99 under 50 ms.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Thread-safe counters and one latency histogram for the webhook."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: dict[str, int] = defaultdict(int)
        self._ack_counts = [0] * len(ACK_BUCKETS)
        self._ack_sum = 0.0
        self._ack_n = 0

    def mail(self, result: str) -> None:
        """Count one POST /v1/mail by result (accepted, duplicate, unauthorized, ...)."""
        with self._lock:
            self._mails[result] += 1

    def ack(self, seconds: float) -> None:
        with self._lock:
            self._ack_sum += seconds
            self._ack_n += 1
            for i, bound in enumerate(ACK_BUCKETS):
                if seconds <= bound:
                    self._ack_counts[i] += 1

    def render(self, counts: Mapping[str, Mapping[str, int]], queue_pending: int | None) -> str:
        lines = [
            "# HELP reviewbot_mails_received_total POST /v1/mail requests by result.",
            "# TYPE reviewbot_mails_received_total counter",
        ]
        with self._lock:
            for result in sorted(self._mails):
                lines.append(
                    f'reviewbot_mails_received_total{{result="{result}"}} {self._mails[result]}'
                )
            lines += [
                "# HELP reviewbot_mail_ack_seconds Time from request to 202 (stored, fsynced).",
                "# TYPE reviewbot_mail_ack_seconds histogram",
            ]
            for bound, n in zip(ACK_BUCKETS, self._ack_counts, strict=True):
                lines.append(f'reviewbot_mail_ack_seconds_bucket{{le="{bound}"}} {n}')
            lines.append(f'reviewbot_mail_ack_seconds_bucket{{le="+Inf"}} {self._ack_n}')
            lines.append(f"reviewbot_mail_ack_seconds_sum {self._ack_sum:.6f}")
            lines.append(f"reviewbot_mail_ack_seconds_count {self._ack_n}")
        lines += [
            "# HELP reviewbot_mails_stored Mails in the store.",
            "# TYPE reviewbot_mails_stored gauge",
            f"reviewbot_mails_stored {counts.get('mails', {}).get('stored', 0)}",
            "# HELP reviewbot_mails_quarantined Mails set aside after failed intakes.",
            "# TYPE reviewbot_mails_quarantined gauge",
            f"reviewbot_mails_quarantined {counts.get('mails', {}).get('quarantined', 0)}",
        ]
        for table, states in (
            ("series", ("waiting", "queued", "reviewed", "failed", "superseded")),
            ("runs", ("queued", "running", "finished", "failed", "superseded")),
        ):
            lines += [
                f"# HELP reviewbot_{table} {table.capitalize()} in the store by state.",
                f"# TYPE reviewbot_{table} gauge",
            ]
            have = counts.get(table, {})
            for state in states:
                lines.append(f'reviewbot_{table}{{state="{state}"}} {have.get(state, 0)}')
        if queue_pending is not None:
            lines += [
                "# HELP reviewbot_queue_pending Tasks waiting in the Huey queue.",
                "# TYPE reviewbot_queue_pending gauge",
                f"reviewbot_queue_pending {queue_pending}",
            ]
        return "\n".join(lines) + "\n"
