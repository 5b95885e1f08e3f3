#!/bin/sh
# Build dist/looop: the whole program as one self-contained executable (PyInstaller --onefile
# --strip, the seeds embedded). Runs on a machine without Python. Usage: make binary
#   DIST=dir   where the executable goes (default dist)
#   PYTHON=py  the interpreter with looop installed (default .venv/bin/python, created if absent)
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    python3 -m venv .venv
    PYTHON=.venv/bin/python
fi
"$PYTHON" -m pip install -q -e ".[binary]"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m PyInstaller --onefile --strip --noconfirm --log-level WARN --name looop \
    --distpath "${DIST:-$root/dist}" --workpath "$work/build" --specpath "$work" \
    --add-data "$root/seeds:looop/seeds" \
    "$root/looop/__main__.py"
echo "built ${DIST:-$root/dist}/looop"
