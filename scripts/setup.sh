#!/usr/bin/env bash
# Installs everything reviewbot needs on Debian 12 (system packages, then Python packages
# into .venv), idempotently; then, unless --no-demo, runs the main job on the embedded
# defaults: imports the kernel tree once and reviews an example series from corpus/ with
# every stage (apply, rules, build, boot, charge tests). First run measured at 41.5 min on 2
# busy cores with an empty HOME (README, "First run, measured"); later runs reuse the caches.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=1
[ "${1:-}" = "--no-demo" ] && demo=0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

APT_PACKAGES=(
  git ca-certificates xz-utils python3 python3-venv python3-pip
  linux-source-6.1                                   # the root kernel base
  linux-source-6.12                                  # the second base (bookworm-security)
  gpgv debian-archive-keyring                        # checks the third base (debian:sid/...)
  build-essential flex bison bc libelf-dev libssl-dev cpio kmod  # kernel build
  ccache bubblewrap                                  # incremental, sandboxed builds
  qemu-system-x86 busybox-static                     # boot and charge tests
  coccinelle                                         # the `coccinelle` rule engine
  public-inbox                                       # scans of public-inbox archives, tests
  redis-server postgresql                            # tests: distributed queue, PostgreSQL store
  chromium                                           # tests: the HTML page in a real browser
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The distribution's interpreter (the python3 apt installs above), not one a version
# manager (pyenv) puts first on PATH: Debian builds it with PGO and LTO, and the rules
# stage runs about 15% faster on it than on a plain source build (bench/rules.py).
# PYTHON=... picks another one; an existing .venv is kept as it is.
PY=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
  PY=/usr/bin/python3
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  $PY -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,service]' 2>&1 \
  | grep -v -E '^WARNING: (Location|Running pip)' || true
# An editable install leaves bytecode to the first run, and PYTHONDONTWRITEBYTECODE (set in
# some CI images) would make every run recompile ~100 modules (60 ms per command).
.venv/bin/python -m compileall -q reviewbot >/dev/null
.venv/bin/python -c 'import reviewbot' >/dev/null
echo "setup: reviewbot installed in .venv (activate with: . .venv/bin/activate)"

if [ "$demo" = 1 ]; then
  bash scripts/demo.sh
fi
