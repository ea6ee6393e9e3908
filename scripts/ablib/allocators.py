"""The allocators scripts/ab knows, where their libraries live, and which Debian package has them."""
import os

LIBDIR = "/usr/lib/x86_64-linux-gnu"
DEFAULT = ["glibc", "glibc-arena2", "kmalloc", "mimalloc", "jemalloc"]


class Allocator:
    def __init__(self, name, lib=None, env=None, package=None, note=""):
        self.name = name        # label in tables and plots
        self.lib = lib          # library to LD_PRELOAD, or None for glibc's own malloc
        self.env = env or {}    # extra environment (e.g. MALLOC_ARENA_MAX)
        self.package = package  # Debian package providing lib, or None
        self.note = note

    def __repr__(self):
        return f"Allocator({self.name!r}, lib={self.lib!r})"


def known(build_dir):
    """name -> Allocator for every allocator with a built-in recipe."""
    return {
        "glibc": Allocator("glibc", note="glibc malloc, no preload"),
        "glibc-arena2": Allocator("glibc-arena2", env={"MALLOC_ARENA_MAX": "2"},
                                  note="glibc malloc with MALLOC_ARENA_MAX=2 (the usual tuning)"),
        "kmalloc": Allocator("kmalloc", lib=os.path.join(build_dir, "preload", "libkmalloc.so"),
                             note="this project (scripts/build)"),
        "mimalloc": Allocator("mimalloc", lib=f"{LIBDIR}/libmimalloc.so.2", package="libmimalloc2.0"),
        "jemalloc": Allocator("jemalloc", lib=f"{LIBDIR}/libjemalloc.so.2", package="libjemalloc2"),
        "tcmalloc": Allocator("tcmalloc", lib=f"{LIBDIR}/libtcmalloc_minimal.so.4",
                              package="libtcmalloc-minimal4"),
    }


class AllocatorError(Exception):
    pass


def resolve(specs, build_dir, lib_overrides=()):
    """Allocators for a list of specs: a known name, or NAME=/path/to/lib.so for any other library.

    lib_overrides: NAME=PATH strings replacing a known allocator's library path.
    Raises AllocatorError with a message for the user on an unknown name or a missing library.
    """
    table = known(build_dir)
    for item in lib_overrides:
        name, sep, path = item.partition("=")
        if not sep or name not in table or table[name].lib is None:
            raise AllocatorError(f"--lib {item}: expected NAME=PATH with NAME one of "
                                 f"{', '.join(n for n, a in table.items() if a.lib)}")
        table[name].lib = path
    out, seen = [], set()
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        name, sep, path = spec.partition("=")
        if sep:
            a = Allocator(name, lib=os.path.abspath(path), note=f"custom ({path})")
        elif name in table:
            a = table[name]
        else:
            raise AllocatorError(f"unknown allocator '{name}': known are {', '.join(table)}; "
                                 "or give NAME=/path/to/lib.so")
        if a.name in seen:
            raise AllocatorError(f"allocator '{a.name}' given twice")
        seen.add(a.name)
        if a.lib is not None and not os.path.isfile(a.lib):
            if a.package:
                hint = f"install the Debian package {a.package} (apt-get install {a.package}; scripts/bootstrap does)"
            elif a.name == "kmalloc":
                hint = "build it with scripts/build (scripts/ab does, unless --no-build)"
            else:
                hint = "check the path"
            raise AllocatorError(f"{a.name}: library {a.lib} not found: {hint}")
        out.append(a)
    if not out:
        raise AllocatorError("no allocators given")
    return out
