#!/bin/sh
# myst runs this (template.yml: build.render) in this folder with BUILD_DIRECTORY and CONTENT_CDN set.
# It picks a Python that has Jinja2 and Pygments: $BOOKSITE_PYTHON, the repository's .venv, the active
# virtual environment, the one next to `myst` on PATH, or python3.
cd "$(dirname "$0")"
MYST_BIN=$(command -v myst 2>/dev/null || true)
for py in "$BOOKSITE_PYTHON" ../../.venv/bin/python "${BUILD_DIRECTORY:+$BUILD_DIRECTORY/../../.venv/bin/python}" \
          "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" "${MYST_BIN:+$(dirname "$MYST_BIN")/python}" python3 python; do
  [ -n "$py" ] || continue
  if "$py" -c "import jinja2, pygments" >/dev/null 2>&1; then exec "$py" render.py "$@"; fi
done
echo "booksite: no Python with jinja2 and pygments found; set BOOKSITE_PYTHON to the book's venv python" >&2
exit 1
