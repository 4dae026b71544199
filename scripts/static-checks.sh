#!/usr/bin/env bash
# The type check (tsc) and the lint (eslint) at the same time: each keeps one core busy for most of a minute, and
# neither needs the other. Each one's output is printed whole once it is done; either failing fails this script.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=node_modules/.bin
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

"$BIN/tsc" --noEmit -p . >"$OUT/tsc" 2>&1 &
TSC=$!
"$BIN/eslint" . >"$OUT/eslint" 2>&1 &
ESLINT=$!

status=0
for check in tsc eslint; do
  if [[ $check == tsc ]]; then wait "$TSC"; else wait "$ESLINT"; fi
  code=$?
  cat "$OUT/$check"
  if [[ $code -ne 0 ]]; then
    echo "static checks: $check failed (exit $code)" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && echo 'static checks: tsc and eslint passed'
exit "$status"
