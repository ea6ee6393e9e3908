#!/usr/bin/env bash
# Build the differential fuzzer of the km_* API with clang (libFuzzer + ASan + UBSan; the project
# itself builds with g++) and run it. Used by the meson test 'fuzz' (a short bounded run) and by
# scripts/fuzz (a longer campaign).
# Usage: tests/fuzz/run.sh SRC_ROOT OUT_DIR SECONDS [libFuzzer args...]
# Exit status: 0 when the run found nothing; libFuzzer's status otherwise (a crash input is left in
# OUT_DIR/crash-* and printed). 77 (skipped) when clang or libFuzzer is not installed.
set -euo pipefail
src=${1:?SRC_ROOT}; out=${2:?OUT_DIR}; secs=${3:-25}; shift 3 || true
cxx=${CLANGXX:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null; then cxx=$c; break; fi
  done
fi
if [ -z "$cxx" ]; then echo "fuzz: clang++ not installed (scripts/bootstrap installs it); skipped"; exit 77; fi
mkdir -p "$out/obj" "$out/corpus"

san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
flags=(-std=c++20 -O1 -g -I"$src/src" -I"$src/src/api" -fno-exceptions -fno-rtti
       -ftls-model=initial-exec -DKM_LANES_PER_DOUBLING=4 -DKM_SECURE_DEFAULT=0)
sources=("$src"/src/platform/*.cpp "$src"/src/core/*.cpp "$src"/src/api/api.cpp)

# Rebuild an object when its source, or any header of the core, is newer than it.
newest_header=$(find "$src/src" -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objs=()
pids=()
for s in "${sources[@]}"; do
  o="$out/obj/$(basename "$(dirname "$s")")_$(basename "$s" .cpp).o"
  objs+=("$o")
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || \
     awk -v h="$newest_header" -v o="$(stat -c %Y "$o")" 'BEGIN { exit !(h > o) }'; then
    "$cxx" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o" &
    pids+=($!)
    if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
bin="$out/fuzz_api"
if [ ! -f "$bin" ] || [ "$src/tests/fuzz/fuzz_api.cpp" -nt "$bin" ] || \
   [ -n "$(find "$out/obj" -newer "$bin" -name '*.o')" ]; then
  "$cxx" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer "$src/tests/fuzz/fuzz_api.cpp" "${objs[@]}" \
    -lpthread -o "$bin"
fi

# New inputs go to OUT_DIR/corpus; the committed seeds are read only.
echo "fuzz: $bin for ${secs}s"
cd "$out"
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
    -print_final_stats=1 -detect_leaks=0 "$@" "$out/corpus" "$src/tests/fuzz/corpus"
