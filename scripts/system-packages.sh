#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed yet: with apt-get
# as root, or through sudo when that needs no password; otherwise say in one message what
# to run, and fail. Installs nothing when everything is there (no apt-get call at all).
set -euo pipefail

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system packages missing: ${missing[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get here (FRVS's Makefile installs Debian packages); install the" \
         "equivalents of: ${missing[*]}" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: installing them needs root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
