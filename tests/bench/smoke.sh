#!/bin/sh
# Smoke test of one benchmark workload, run exactly as scripts/bench runs it: through bench-exec, with
# LIB preloaded ("-" for none). Passes when the program exits 0 and prints its RESULT line with
# check=ok (its own verification of block contents). Timing is never checked.
# Usage: smoke.sh BENCH_EXEC LIB|- PROGRAM ARGS...
set -u
exec_helper=$1 lib=$2
shift 2
[ "$lib" = - ] && lib=
m=$(mktemp) out=$(mktemp)
trap 'rm -f "$m" "$out"' EXIT
"$exec_helper" --preload "$lib" --timeout 50 --out "$m" -- "$@" >"$out"
cat "$out"
cat "$m"
grep -q ' status=0$' "$m" || { echo "smoke: $1 did not exit 0 (${lib:-no preload})"; exit 1; }
grep -q '^RESULT .* check=ok' "$out" || { echo "smoke: $1 printed no 'check=ok' (${lib:-no preload})"; exit 1; }
