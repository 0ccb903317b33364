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
if [ ${#need[@]} -eq 0 ]; then echo "system packages: all present"; exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
  echo "Missing system packages: ${need[*]}. Install them with your package manager and re-run." >&2; exit 1
fi
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
