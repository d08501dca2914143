#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 (run as root), then creates .venv
# with virtbench (editable) and its dev dependencies. Idempotent; CI runs it via .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: one line per need, so additions merge cleanly.
# Checked on a debootstrap --variant=minbase bookworm root: with --no-install-recommends,
# Depends still bring seabios + ipxe-qemu (QEMU ROMs), fonts-dejavu-core (Chromium text, via
# fontconfig-config) and locales (initdb); name a package here rather than rely on Recommends.
APT_PACKAGES=(
  gcc libc6-dev make          # workloads are C programs compiled on the host
  ccache                      # tests build with CC="ccache gcc" (docs/build.md)
  python3-venv python3-dev    # the project's virtual environment
  coreutils grep bsdextrautils  # od, sort, tee, wc for the shell-script workloads
  chromium                    # virtbench report: the HTML is checked in headless Chromium
  qemu-system-x86 busybox-static linux-image-amd64 cpio  # VM guests (docs/vm.md): QEMU, the guest's busybox, a guest kernel in /boot
  postgresql util-linux       # the store is tested against a real PostgreSQL (runuser)
  postmark                    # io postmark is compared with NetApp's Postmark (docs/io.md)
  openssh-server openssh-client  # fleet tests: real sshd hosts on loopback (docs/fleet.md)
  zsh fish                    # `virtbench completion zsh|fish` scripts are syntax-checked
)

if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup-dev: not root: skipping apt-get (packages: ${APT_PACKAGES[*]})" >&2
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# playwright (the dashboard's browser test) drives Debian's chromium: never download one.
# The pinned versions of constraints.txt (scripts/refresh-constraints.sh refreshes them).
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
