#!/usr/bin/env bash
# Installs everything reviewbot needs on Debian 12 (system packages and Python packages),
# idempotently, then (unless --no-demo) reviews an example series from corpus/ with every
# stage that exists. Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=1
[ "${1:-}" = "--no-demo" ] && demo=0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

APT_PACKAGES=(
  git ca-certificates xz-utils
  linux-source-6.1            # the default kernel tree
  build-essential flex bison bc libelf-dev libssl-dev cpio kmod  # kernel build
  ccache bubblewrap           # incremental and sandboxed builds
  qemu-system-x86 busybox-static  # boot and charge tests
  coccinelle                  # `coccinelle` rule engine
  public-inbox                # tests: a real public-inbox v2 inbox and httpd
  redis-server                # tests: distributed queue mode
  chromium                    # tests: the HTML page in a real browser
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ] && ! $PY -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
  : # a system python: pip installs into it (Debian's needs --break-system-packages)
fi
$PY -m pip install -q --disable-pip-version-check -e '.[dev,service]' 2>&1 | grep -v -E '^WARNING: (Location|Running pip)' || true
$PY -c 'import reviewbot' >/dev/null

if [ "$demo" = 1 ]; then
  bash scripts/demo.sh
fi
