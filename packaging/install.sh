#!/bin/sh
# Install looop from this checkout for the current user, never touching the system Python
# (Debian and Ubuntu refuse `pip install` there: PEP 668, "externally-managed-environment").
#
#   LOOOP=$(sh packaging/install.sh) && "$LOOOP" up && "$LOOOP" _ state
#
# With `uv` or `pipx` on PATH it is `uv tool install` / `pipx install`. Otherwise a venv under
# ${XDG_DATA_HOME:-~/.local/share}/looop/venv, with `looop` linked into ~/.local/bin. Progress goes
# to stderr; stdout is one line, the path of the installed `looop`, so the command above works
# before ~/.local/bin is on PATH. PYTHON picks the interpreter (default: python3, 3.10 or newer).
set -eu

say() { printf 'looop install: %s\n' "$*" >&2; }
fail() {
    printf 'looop install: %s\n' "$*" >&2
    exit 1
}

src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$src/pyproject.toml" ] || fail "no pyproject.toml in $src: run this script from a looop checkout"
[ -n "${HOME:-}" ] || fail "HOME is not set"
bin_dir="$HOME/.local/bin"

if command -v uv >/dev/null 2>&1; then
    say "installing with uv tool install"
    uv tool install --force --reinstall "$src" >&2
    bin_dir=$(uv tool dir --bin)
elif command -v pipx >/dev/null 2>&1; then
    say "installing with pipx install"
    pipx install --force "$src" >&2
    bin_dir=${PIPX_BIN_DIR:-$bin_dir}
else
    python=${PYTHON:-python3}
    command -v "$python" >/dev/null 2>&1 ||
        fail "no $python on PATH: install Python 3.10 or newer (Debian/Ubuntu: sudo apt install python3 python3-venv)"
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        fail "looop needs Python 3.10 or newer; $python is $version"
    venv="${XDG_DATA_HOME:-$HOME/.local/share}/looop/venv"
    # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a package of its own.
    hint="$python cannot create a virtual environment: install python3-venv (Debian/Ubuntu: sudo apt install python3-venv, or python$version-venv), then run this again"
    if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        fail "$hint"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        say "creating a virtual environment in $venv"
        mkdir -p "$(dirname "$venv")"
        if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            fail "$hint"
        fi
    fi
    say "installing $src into it"
    "$venv/bin/python" -m pip install -q --upgrade "$src" >&2 || fail "pip could not install $src (see above)"
    mkdir -p "$bin_dir"
    ln -sf "$venv/bin/looop" "$bin_dir/looop"
fi

looop="$bin_dir/looop"
[ -x "$looop" ] || fail "the install finished but $looop is missing"
case ":${PATH:-}:" in
*":$bin_dir:"*) ;;
*) say "$bin_dir is not on your PATH: add it (e.g. in ~/.profile: export PATH=\"$bin_dir:\$PATH\") to run plain \`looop\`" ;;
esac
say "installed: $looop"
printf '%s\n' "$looop"
