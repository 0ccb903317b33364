#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those that are missing.
# Runs as root (as on the book's CI machines) or through sudo when it is available.
set -euo pipefail
need=()
command -v chromium    >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v pdftotext   >/dev/null 2>&1 || need+=(poppler-utils)
# the Word export turns LaTeX equations into Word equations with pandoc (scripts/bookbuild/docx.py)
command -v pandoc      >/dev/null 2>&1 || need+=(pandoc)
command -v bwrap       >/dev/null 2>&1 || need+=(bubblewrap)   # the sandbox's OS isolation layer (genai_lib/sandbox.py)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
else
  if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
    echo "Missing system packages: ${need[*]}. Install them with your package manager and re-run." >&2; exit 1
  fi
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Ubuntu 23.10+ (and GitHub's ubuntu-24.04 runners) let a normal user create user namespaces only from
# programs whose AppArmor profile allows it. Allow it for bubblewrap alone (not system-wide); without this
# the sandbox warns and runs without its bubblewrap layer (genai_lib/sandbox.py).
if [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = 1 ] && [ "$(id -u)" -ne 0 ] \
   && [ ! -e /etc/apparmor.d/bwrap ] && command -v apparmor_parser >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  echo "allowing user namespaces for /usr/bin/bwrap (AppArmor profile /etc/apparmor.d/bwrap)"
  printf '%s\n' 'abi <abi/4.0>,' 'include <tunables/global>' '' 'profile bwrap /usr/bin/bwrap flags=(unconfined) {' \
    '  userns,' '  include if exists <local/bwrap>' '}' | sudo tee /etc/apparmor.d/bwrap >/dev/null
  sudo apparmor_parser -r /etc/apparmor.d/bwrap || echo "warning: could not load the bwrap AppArmor profile" >&2
fi
