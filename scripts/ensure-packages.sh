#!/usr/bin/env bash
# Install the Debian packages that are missing, and only those.
#
#   scripts/ensure-packages.sh CHECK:PACKAGE [CHECK:PACKAGE ...]
#
# CHECK is a command name (`msgfmt`) or an absolute path glob
# (`/usr/lib/postgresql/*/bin/postgres`); when it is not found, PACKAGE is installed.
# `apt-get update` runs at most once per call, and only when something is missing.
set -euo pipefail

missing=()
for pair in "$@"; do
    check=${pair%%:*}
    package=${pair#*:}
    if [[ $check == /* ]]; then
        compgen -G "$check" >/dev/null && continue
    else
        command -v "$check" >/dev/null 2>&1 && continue
    fi
    missing+=("$package")
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: missing Debian packages: ${missing[*]}" >&2
    echo "       install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q "${missing[@]}" </dev/null
