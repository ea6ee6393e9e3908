#!/usr/bin/env bash
# `meson install` gives a working -lkmalloc: install into a scratch DESTDIR, build a C++ program with
# pkg-config's flags, and check that its malloc and new are kmalloc's and that kmem.h is there.
set -euo pipefail
build=$1
dest=$(mktemp -d /tmp/kmalloc-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild >/dev/null
pc=$(find "$dest" -name kmalloc.pc | head -1)
[ -n "$pc" ] || { echo "kmalloc.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
# The .pc file names the real prefix; point it into the DESTDIR copy.
prefix="$dest$(pkg-config --variable=prefix kmalloc)"
pcq() { pkg-config --define-variable=prefix="$prefix" "$@" kmalloc; }
flags=$(pcq --cflags --libs)
cat > "$dest/app.cpp" <<'CPP'
#include <kmalloc.h>
#include <kmalloc.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>
int main() {
  void* p = std::malloc(100);
  int* q = new int[10];
  std::vector<int, km::allocator<int>> v(1000, 7);
  kmarena* a = kmarenai(4096);
  void* r = kmarenaa(a, 32);
  int ok = km_owns(p) && km_owns(q) && km_owns(v.data()) && r != nullptr;
  kmarenax(a);
  delete[] q;
  std::free(p);
  std::printf("%s\n", ok ? "served-by-kmalloc" : "NOT-kmalloc");
  return ok ? 0 : 1;
}
CPP
g++ -std=c++20 "$dest/app.cpp" -o "$dest/app" $flags
libdir=$(pcq --variable=libdir)
LD_LIBRARY_PATH=$libdir "$dest/app"
# (ldd's output captured first: `ldd | grep -q` fails under pipefail when grep quits early.)
deps=$(LD_LIBRARY_PATH=$libdir ldd "$dest/app")
case $deps in
  *"libkmalloc.so.0 => $libdir/"*) ;;
  *) echo "not linked with the installed library:"; echo "$deps"; exit 1 ;;
esac
