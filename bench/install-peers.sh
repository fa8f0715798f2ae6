#!/bin/sh
# Install the tools users would pick instead of ghost, for bench/compare.py.
#
# Only registry packages, nothing else is downloaded:
#   task-spooler  Debian archive (apt-get)  -> binary `tsp` (Debian renames `ts`)
#   supervisor    PyPI, into its own venv   -> bench/.peers/supervisor-venv/bin/{supervisord,supervisorctl}
#   pm2           npm, into a local prefix  -> bench/.peers/npm/bin/pm2
# Idempotent: a peer that is already installed is left alone (say --force to reinstall).
# Skips a peer whose package manager is missing, with a note; exits non-zero only on a
# failed install.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PEERS="$HERE/.peers"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1
PYTHON=${PYTHON:-python3}
mkdir -p "$PEERS"
failed=0

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "  needs root for: $*" >&2; return 1
    fi
}

echo "== task-spooler (Debian package task-spooler, binary tsp)"
if [ $FORCE = 0 ] && command -v tsp >/dev/null 2>&1; then
    echo "  already installed: $(command -v tsp) ($(dpkg-query -W -f '${Version}' task-spooler 2>/dev/null || echo '?'))"
elif command -v apt-get >/dev/null 2>&1; then
    if as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq task-spooler >/dev/null; then
        echo "  installed: $(command -v tsp) ($(dpkg-query -W -f '${Version}' task-spooler))"
    else
        echo "  FAILED to install task-spooler" >&2; failed=1
    fi
else
    echo "  skipped: no apt-get on this machine"
fi

echo "== supervisor (PyPI, venv $PEERS/supervisor-venv)"
SV="$PEERS/supervisor-venv"
if [ $FORCE = 0 ] && [ -x "$SV/bin/supervisorctl" ]; then
    echo "  already installed: $("$SV/bin/supervisord" --version)"
elif command -v "$PYTHON" >/dev/null 2>&1; then
    rm -rf "$SV"
    if "$PYTHON" -m venv "$SV" && "$SV/bin/pip" install -q --disable-pip-version-check supervisor; then
        echo "  installed: supervisor $("$SV/bin/supervisord" --version)"
    else
        echo "  FAILED to install supervisor" >&2; failed=1
    fi
else
    echo "  skipped: no $PYTHON"
fi

echo "== pm2 (npm, prefix $PEERS/npm)"
NPM="$PEERS/npm"
# Read the version from package.json: `pm2 --version` would start a God daemon.
pm2_version() {
    node -p "require('$NPM/lib/node_modules/pm2/package.json').version"
}
if [ $FORCE = 0 ] && [ -x "$NPM/bin/pm2" ]; then
    echo "  already installed: pm2 $(pm2_version)"
elif command -v npm >/dev/null 2>&1; then
    if npm install --silent --no-fund --no-audit --prefix "$NPM" -g pm2 >/dev/null; then
        echo "  installed: pm2 $(pm2_version) (node $(node --version))"
    else
        echo "  FAILED to install pm2" >&2; failed=1
    fi
else
    echo "  skipped: no npm on this machine"
fi

exit $failed
