#!/usr/bin/env python3
"""Benchmark: how many series reach the list in part, and how many the archive completes.

    python3 bench/complete.py [MBOX ...] [--archive URL] [--offline] [--json]

Default input: a year of the cgroups list (../shared/corpus/cgroups-2020.mbox.gz; skipped
with a message when absent). Series are assembled as `reviewbot review` does (latest
versions only); a series is partial on arrival when patches are missing or a series of
several patches has no cover letter. Each partial series is then completed as the review
does (mail/complete.py) from ``--archive`` (default: ``fetch.public_inbox_url``, lore), and
counted as completed (every patch there), improved (some added, some still missing) or
still partial, with the archive's reason. Nothing is reviewed: assembly and fetches only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviewbot.config import load_settings
from reviewbot.mail.complete import Archive, complete, needs_completion
from reviewbot.mail.series import read_messages, read_series

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "cgroups-2020.mbox.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mboxes", nargs="*", type=Path)
    parser.add_argument("--archive", metavar="URL", help="public-inbox base URL")
    parser.add_argument("--offline", action="store_true", help="count, do not fetch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    paths = args.mboxes or [CORPUS]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"skipped: {missing[0]} is absent (the real-mail corpus is only on development "
              "machines)")
        return 0
    settings = load_settings(None)
    if args.archive:
        settings = dataclasses.replace(
            settings, fetch=dataclasses.replace(settings.fetch, public_inbox_url=args.archive))
    started = time.monotonic()
    found = read_series(paths, settings)
    latest = [s for s in found.series if s.latest]
    multi = [s for s in latest if s.expected > 1]
    partial = [s for s in latest if needs_completion(s)]
    figures: dict[str, object] = {
        "input": [str(p) for p in paths],
        "series": len(latest),
        "multi_patch": len(multi),
        "partial_on_arrival": len(partial),
        "patches_missing": sum(len(s.missing) for s in partial),
        "no_cover": sum(1 for s in partial if s.cover is None and s.expected > 1),
        # every version, as issue 15 counted them (32 of 138 with patches missing)
        "all_versions_multi_patch": sum(1 for s in found.series if s.expected > 1),
        "all_versions_missing_patches": sum(1 for s in found.series if s.missing),
        "archive": None if args.offline else settings.fetch.public_inbox_url,
    }
    if not args.offline:
        archive = Archive(settings)
        done = complete(found, lambda: read_messages(paths, settings.mail), settings, archive)
        by_id = {pid: s for s in done.series for pid in
                 [p.message.message_id for p in s.patches]}
        outcome: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for series in partial:
            first = series.patches[0].message.message_id if series.patches else None
            after = by_id.get(first) if first else None
            if after is None or not (after.from_archive or (after.cover and not series.cover)):
                outcome["still partial"] += 1
                note = next((w for w in (after or series).warnings if "archive" in w), "")
                reasons[note.split("(", 1)[-1][:80] if note else "no reason recorded"] += 1
            elif needs_completion(after):
                outcome["improved"] += 1
            else:
                outcome["completed"] += 1
        figures.update(outcome=dict(outcome), reasons=dict(reasons.most_common(5)),
                       fetches=archive.fetches)
    figures["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['series']} series ({figures['multi_patch']} of several patches); "
          f"partial on arrival: {figures['partial_on_arrival']} "
          f"({figures['patches_missing']} patches missing, {figures['no_cover']} without "
          "their cover letter)")
    print(f"all versions: {figures['all_versions_missing_patches']} of "
          f"{figures['all_versions_multi_patch']} multi-patch series miss patches")
    if not args.offline:
        print(f"archive {figures['archive']}: {figures['fetches']} thread fetches; "
              f"outcome: {figures['outcome']}")
        for reason, n in dict(figures["reasons"]).items():  # type: ignore[call-overload]
            print(f"  still partial, {n}: {reason}")
    print(f"{figures['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
