"""The allocators the A/B tool knows, where their libraries live, and which Debian package has them."""
import os
import sysconfig

LIBDIR = "/usr/lib/" + (sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu")
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


def known(layout):
    """name -> Allocator for every allocator with a built-in recipe (kmalloc: the layout's library)."""
    return {
        "glibc": Allocator("glibc", note="glibc malloc, no preload"),
        "glibc-arena2": Allocator("glibc-arena2", env={"MALLOC_ARENA_MAX": "2"},
                                  note="glibc malloc with MALLOC_ARENA_MAX=2 (the usual tuning)"),
        "kmalloc": Allocator("kmalloc", lib=layout.kmalloc_lib, note="this project"),
        "mimalloc": Allocator("mimalloc", lib=f"{LIBDIR}/libmimalloc.so.2", package="libmimalloc2.0"),
        "jemalloc": Allocator("jemalloc", lib=f"{LIBDIR}/libjemalloc.so.2", package="libjemalloc2"),
        "tcmalloc": Allocator("tcmalloc", lib=f"{LIBDIR}/libtcmalloc_minimal.so.4",
                              package="libtcmalloc-minimal4"),
    }


class AllocatorError(Exception):
    pass


def missing_hint(a, layout):
    """What the user can do about an allocator whose library is missing."""
    if a.package:
        return f"install the Debian package {a.package} (apt-get install {a.package}" + (
            "; scripts/bootstrap does)" if layout.build_dir else ")")
    if a.name == "kmalloc":
        return layout.kmalloc_hint
    return "check the path"


def resolve_available(names, layout, lib_overrides=()):
    """(allocators of `names` whose library is there, those whose library is missing)."""
    table = _table(layout, lib_overrides)
    found = [table[n] for n in names if table[n].lib is None or os.path.isfile(table[n].lib)]
    missing = [table[n] for n in names if table[n] not in found]
    if not found:
        raise AllocatorError("no allocators found")
    return found, missing


def _table(layout, lib_overrides):
    table = known(layout)
    for item in lib_overrides:
        name, sep, path = item.partition("=")
        if not sep or name not in table or table[name].lib is None:
            raise AllocatorError(f"--lib {item}: expected NAME=PATH with NAME one of "
                                 f"{', '.join(n for n, a in table.items() if a.lib)}")
        table[name].lib = path
    return table


def resolve(specs, layout, lib_overrides=()):
    """Allocators for a list of specs: a known name, or NAME=/path/to/lib.so for any other library.

    lib_overrides: NAME=PATH strings replacing a known allocator's library path.
    Raises AllocatorError with a message for the user on an unknown name or a missing library.
    """
    table = _table(layout, lib_overrides)
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
            raise AllocatorError(f"{a.name}: library {a.lib} not found: {missing_hint(a, layout)}")
        out.append(a)
    if not out:
        raise AllocatorError("no allocators given")
    return out
