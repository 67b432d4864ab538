#!/usr/bin/env bash
# The main job on the embedded defaults: import the Debian 6.1 kernel tree (once), then
# review an example series from corpus/ with every stage. Exit 1 from `review` means
# "findings", which is the expected outcome for this deliberately risky series.
set -euo pipefail
cd "$(dirname "$0")/.."
R=.venv/bin/reviewbot
[ -x "$R" ] || R=reviewbot
SERIES=corpus/04-memcg-replace-mm-owner-with-mm-memcg.mbox
$R tree init
rc=0
# --profile fast: the series touches mm/ and memcontrol.h, so the default rule would build
# the debug kernel, which about doubles a first run's build and boot time on 2 cores
# (docs/boot.md, "Build profiles"). Afterwards: $R review --boot --profile debug "$SERIES"
$R review --boot --profile fast "$SERIES" || rc=$?
if [ "$rc" -gt 1 ]; then
  echo "demo: review failed with exit code $rc" >&2
  exit "$rc"
fi
echo "demo: done (review exit code $rc: 0 = nothing to report, 1 = findings)"
