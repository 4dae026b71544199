#!/usr/bin/env bash
# What the test suite needs besides node_modules: Debian's Chromium (browser tests, real WebAuthn), oathtool (TOTP
# cross-checks) and zbarimg (QR cross-checks). Run by `npm test` before the tests: when something is missing it is
# installed with apt-get if this runs as root (as on CI and fresh machines), otherwise the run stops at once with one
# line naming what to install. Nothing is downloaded from anywhere but Debian's package mirrors.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v oathtool >/dev/null 2>&1 || missing+=(oathtool)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "test prerequisites: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q update >&2
  apt-get -q install -y -o Dpkg::Use-Pty=0 "${missing[@]}" >&2
  exit 0
fi
echo "npm test needs ${missing[*]}: install them with: sudo apt-get install -y ${missing[*]}" >&2
exit 1
