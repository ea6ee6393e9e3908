#!/usr/bin/env bash
# Suite 'package': builds the Debian packages from a copy of the tree (dpkg-buildpackage -b, no tests,
# no benchmarks), checks each package's file list, unpacks them into a scratch root with dpkg -x and
# runs from there: kmalloc --stats, a C program built with pkg-config against the unpacked -dev
# files, kmalloc-ab on a small command and on a built-in workload; then lintian, if installed.
# Usage: run.sh SOURCE_ROOT VERSION   (meson passes both)
set -euo pipefail
src=$1 version=$2
unset MALLOC_PERTURB_ LD_PRELOAD KMALLOC_LIB   # meson's MALLOC_PERTURB_ only slows the build down
arch=$(dpkg --print-architecture)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
work=$(mktemp -d /tmp/kmalloc-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "package test: $*" >&2; exit 1; }
step() { echo "== $* ($(( SECONDS ))s)"; }

# ---- the version: meson's, debian/changelog's, kmalloc.h's
deb_version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
[ "$deb_version" = "$version" ] || fail "debian/changelog says $deb_version, meson.build says $version"

# ---- build from a copy of the tree (the files git knows, committed or not; no build directories)
step "copy the tree"
tree=$work/kmalloc-$version
mkdir "$tree"
(
  cd "$src"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . \( -path './build*' -o -path ./out -o -path ./.git \) -prune -o -type f -print0
  fi | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
    tar -cf - --null -T - | tar -xf - -C "$tree"
)
step "dpkg-buildpackage -b -us -uc"
if ! (cd "$tree" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" dpkg-buildpackage -b -us -uc) \
     >"$work/build.log" 2>&1; then
  tail -60 "$work/build.log"
  fail "dpkg-buildpackage failed"
fi

# ---- every package has exactly its files (directories aside)
step "file lists"
expect_libkmalloc0="
/usr/lib/$ma/libkmalloc.so.0
/usr/lib/$ma/libkmalloc.so.0.1.0
/usr/share/doc/libkmalloc0/changelog.gz
/usr/share/doc/libkmalloc0/copyright"
expect_libkmalloc_dev="
/usr/include/kmalloc.h
/usr/include/kmalloc.hpp
/usr/include/kmem.h
/usr/lib/$ma/libkmalloc.so
/usr/lib/$ma/pkgconfig/kmalloc.pc
/usr/share/doc/libkmalloc-dev/changelog.gz
/usr/share/doc/libkmalloc-dev/copyright
/usr/share/man/man3/kmalloc.3.gz"
expect_kmalloc_tools="
/usr/bin/kmalloc
/usr/bin/kmalloc-ab
/usr/libexec/kmalloc/ab_handoff
/usr/libexec/kmalloc/ab_phase
/usr/libexec/kmalloc/ab_server
/usr/lib/kmalloc/libkmprobe.so
/usr/share/doc/kmalloc-tools/changelog.gz
/usr/share/doc/kmalloc-tools/copyright
/usr/share/kmalloc/ab/python_dicts.py
/usr/share/kmalloc/ablib/__init__.py
/usr/share/kmalloc/ablib/__main__.py
/usr/share/kmalloc/ablib/allocators.py
/usr/share/kmalloc/ablib/layout.py
/usr/share/kmalloc/ablib/plot.py
/usr/share/kmalloc/ablib/probe.py
/usr/share/kmalloc/ablib/procfs.py
/usr/share/kmalloc/ablib/report.py
/usr/share/kmalloc/ablib/runner.py
/usr/share/kmalloc/ablib/workloads.py
/usr/share/man/man1/kmalloc-ab.1.gz
/usr/share/man/man1/kmalloc.1.gz"
root=$work/root
mkdir "$root"
for pkg in libkmalloc0 libkmalloc-dev kmalloc-tools; do
  deb=$work/${pkg}_${version}_${arch}.deb
  [ -f "$deb" ] || fail "$deb was not built"
  var=expect_${pkg//-/_}
  want=$(printf '%s\n' "${!var}" | sed '/^$/d' | sort)
  have=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)
  if [ "$want" != "$have" ]; then
    echo "$pkg: the files differ from the expected list (< expected, > in the package):" >&2
    diff <(echo "$want") <(echo "$have") >&2 || true
    fail "$pkg has the wrong files"
  fi
  dpkg-deb -c "$deb" | sed "s|^|  $pkg: |"
  dpkg -x "$deb" "$root"
done
# The -dev link and the library's SONAME.
[ "$(readlink "$root/usr/lib/$ma/libkmalloc.so")" = libkmalloc.so.0 ] || fail "libkmalloc.so does not point to libkmalloc.so.0"
objdump -p "$root/usr/lib/$ma/libkmalloc.so.0" | grep -q 'SONAME *libkmalloc.so.0$' || fail "SONAME is not libkmalloc.so.0"
dpkg-deb -f "$work/kmalloc-tools_${version}_${arch}.deb" Depends | grep -q "libkmalloc0 (= $version)" \
  || fail "kmalloc-tools does not depend on libkmalloc0 (= $version)"

# ---- the launcher, from the scratch root: it finds the unpacked library by itself
step "kmalloc launcher"
km=$root/usr/bin/kmalloc
[ "$("$km" --version)" = "kmalloc $version" ] || fail "kmalloc --version: $("$km" --version)"
"$km" --help | grep -q -- '--purge-delay' || fail "kmalloc --help lacks --purge-delay"
[ "$("$km" --print-lib)" = "$root/usr/lib/$ma/libkmalloc.so.0" ] || fail "kmalloc --print-lib: $("$km" --print-lib)"
out=$("$km" --stats /bin/true 2>&1)
echo "$out" | grep -Eq '^kmalloc\[[0-9]+\] true: statistics$' || fail "kmalloc --stats /bin/true printed: $out"
echo "$out" | grep -Eq '^kmalloc\[[0-9]+\] true:   mapped ' || fail "no statistics: $out"
env_out=$(LD_PRELOAD=/nonexistent-first.so "$km" --secure --purge-delay 5 --no-purge-thread env 2>/dev/null)
echo "$env_out" | grep -qx "LD_PRELOAD=$root/usr/lib/$ma/libkmalloc.so.0:/nonexistent-first.so" \
  || fail "LD_PRELOAD not prepended: $(echo "$env_out" | grep LD_PRELOAD)"
for v in KMALLOC_SECURE=1 KMALLOC_PURGE_DELAY_MS=5 KMALLOC_PURGE_THREAD=0; do
  echo "$env_out" | grep -qx "$v" || fail "kmalloc --secure --purge-delay 5 --no-purge-thread: no $v"
done
"$km" -o "$work/stats-%p.txt" sort /etc/passwd >/dev/null
grep -lq ': statistics$' "$work"/stats-*.txt || fail "--stats-file wrote no statistics"
if KMALLOC_LIB=/nonexistent.so "$km" /bin/true 2>"$work/err"; then fail "a missing library was not reported"; fi
grep -q libkmalloc0 "$work/err" || fail "a missing library does not name the package: $(cat "$work/err")"

# ---- a program built against the unpacked -dev files, with pkg-config's flags
step "pkg-config and a C program"
export PKG_CONFIG_PATH=$root/usr/lib/$ma/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1   # /usr/include is the root's here
flags=$(pkg-config --cflags --libs kmalloc)
case $flags in *"-I$root/usr/include"*"-L$root/usr/lib/$ma"*"-lkmalloc"*) ;; *) fail "pkg-config flags: $flags" ;; esac
cat > "$work/app.c" <<'C'
#include <kmalloc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  void *p = malloc(100);
  kmarena *a = kmarenai(4096);
  void *r = kmarenaa(a, 32);
  km_stats st;
  km_stats_get(&st);
  int ok = km_owns(p) && r != NULL && st.in_use >= 100;
  kmarenax(a);
  free(p);
  printf("%s\n", ok ? "served-by-kmalloc" : "NOT-kmalloc");
  return ok ? 0 : 1;
}
C
cc -std=c11 -Wall -Werror "$work/app.c" -o "$work/app" $flags
[ "$(LD_LIBRARY_PATH=$root/usr/lib/$ma "$work/app")" = served-by-kmalloc ] || fail "the C program was not served by kmalloc"
deps=$(LD_LIBRARY_PATH=$root/usr/lib/$ma ldd "$work/app")
case $deps in *"libkmalloc.so.0 => $root/usr/lib/$ma/"*) ;; *) fail "not linked with the unpacked library: $deps" ;; esac

# ---- kmalloc-ab from the scratch root: a small command, a built-in workload, a missing comparator
step "kmalloc-ab"
ab=$root/usr/bin/kmalloc-ab
[ "$("$ab" --version)" = "kmalloc-ab $version" ] || fail "kmalloc-ab --version"
(cd "$work" && "$ab" --runs 1 --timing-runs 0 --allocators glibc,kmalloc --json --out "$work/ab" \
   -- /bin/sh -c 'seq 1 100000 | sort -r > /dev/null' >"$work/ab.json" 2>"$work/ab.err") \
  || { cat "$work/ab.err"; fail "kmalloc-ab on a small command failed"; }
python3 - "$work/ab.json" "$root" <<'PY' || fail "kmalloc-ab's result"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["summary"]["sh"]["kmalloc"]["ok"] and d["summary"]["sh"]["glibc"]["ok"], d["summary"]
assert d["meta"]["allocators"]["kmalloc"]["lib"].startswith(sys.argv[2]), d["meta"]["allocators"]
PY
grep -q '^kmalloc ' "$work/ab.err" || fail "no table row for kmalloc: $(cat "$work/ab.err")"
for f in summary.csv runs.csv samples.csv result.json table.txt; do [ -s "$work/ab/$f" ] || fail "kmalloc-ab wrote no $f"; done
if python3 -c 'import matplotlib' 2>/dev/null; then [ -s "$work/ab/summary.png" ] || fail "kmalloc-ab drew no plot"; fi
"$ab" --runs 1 --timing-runs 0 --allocators glibc,kmalloc --workloads phase,python --scale 0.05 --no-plot \
  --json --out "$work/ab2" >"$work/ab2.json" 2>"$work/ab2.err" \
  || { cat "$work/ab2.err"; fail "kmalloc-ab on the built-in workloads failed"; }
python3 - "$work/ab2.json" <<'PY' || fail "kmalloc-ab's result on the built-in workloads"
import json, sys
d = json.load(open(sys.argv[1]))
for w in ("phase", "python"):
    for a in ("glibc", "kmalloc"):
        e = d["summary"][w][a]
        assert e["ok"] and e["peak_live"] > 100 << 10 and e["frag_avg"] > 1.0, (w, a, e)
PY
if "$ab" --allocators glibc,tcmalloc --lib tcmalloc=/nonexistent.so -- true 2>"$work/err"; then fail "a missing comparator was not reported"; fi
grep -q libtcmalloc-minimal4 "$work/err" || fail "a missing comparator does not name its package: $(cat "$work/err")"
[ -z "$(find "$root" -name __pycache__)" ] || fail "kmalloc-ab left __pycache__ in the installed tree"

# ---- the man pages say what the option table says
step "man pages"
for page in man1/kmalloc.1 man1/kmalloc-ab.1 man3/kmalloc.3; do
  zcat "$root/usr/share/man/$page.gz" > "$work/page"
  if [ "$page" != man1/kmalloc-ab.1 ]; then
    python3 "$src/tools/options_doc.py" check-man --options "$src/src/core/options.cpp" "$work/page" || fail "$page"
  fi
  if command -v groff >/dev/null; then
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$work/page" 2>&1)
    [ -z "$warnings" ] || fail "$page: groff warns: $warnings"
  fi
done

# ---- lintian (bootstrap installs it): errors fail, the rest is printed (explained in debian/README)
if command -v lintian >/dev/null; then
  step "lintian"
  lintian --fail-on error,warning --info --display-experimental --pedantic "$work/kmalloc_${version}_${arch}.changes" \
    || fail "lintian found errors or warnings"
fi
step "done"
