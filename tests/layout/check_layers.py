#!/usr/bin/env python3
"""The layers point one way, and only the platform talks to the kernel.

    platform  <  core  <  api, kmem (beside each other)  <  preload

and inside src/core, files are grouped in the layers of CORE_LAYERS (each file by its name without
.h/.cpp): a file may include the headers of its own layer and of the layers below, never above.

Fails (exit 1, one line per offence: file:line: what) when
  * a file includes one of a layer above its own (src/core including "api/...", "kmalloc.h",
    "kmalloc.hpp", "kmem.h", "kmem/..." or "preload/..."; src/platform including "core/...";
    kmem including api's internals; api or kmem including preload);
  * a system call, or a kernel header, appears outside src/platform (comments and strings left out;
    a call through os:: is the platform's, a member call .read( is not a call to the kernel);
  * a file of src/core includes a core header of a higher core layer, or is in no core layer;
  * an exception below no longer matches anything (remove it once the code is fixed).
Usage: check_layers.py SOURCE_ROOT
"""
import re
import sys
from pathlib import Path

LAYER_DIRS = {"src/platform": "platform", "src/core": "core", "src/api": "api", "src/kmem": "kmem",
              "preload": "preload"}
# What each layer may include of ours (by the include's first path part or file name).
PUBLIC = {"kmalloc.h", "kmalloc.hpp", "kmem.h"}   # src/api's installed headers
FORBIDDEN_INCLUDES = {
    "platform": ["core/", "api/", "kmem/", "preload/"] + sorted(PUBLIC),
    "core": ["api/", "kmem/", "preload/"] + sorted(PUBLIC),
    "api": ["preload/", "kmem/"],
    "kmem": ["preload/", "api/"],   # the public headers are fine: kmem implements kmem.h
    "preload": [],
}
# The layers inside src/core, lowest first (README "Design" has the map). Within a layer files may
# use each other (a page's cells and their secure encoding; a segment and the huge blocks beside it);
# between layers the includes, and so the calls, point down only.
CORE_LAYERS = [
    ("base", ["config", "zero", "lock", "diag", "options", "size_class", "stats", "meta"]),
    ("memory", ["page", "secure", "thin", "segment", "huge", "invariants", "remote", "purge_work",
                "runtime"]),
    ("heaps", ["heap", "foreign", "pool", "span", "thread"]),
    ("purge", ["purge", "sink"]),
    ("entry", ["entry", "fork", "mesh", "report"]),
]
CORE_RANK = {name: i for i, (_, names) in enumerate(CORE_LAYERS) for name in names}

# System calls and the kernel's headers: only src/platform may name them.
SYSCALLS = ["syscall", "mmap", "munmap", "madvise", "mremap", "mprotect", "mincore", "nanosleep",
            "usleep", "sched_yield", "pthread_create", "pthread_atfork", "pthread_sigmask",
            "pthread_key_create", "pthread_setspecific", "pthread_attr_init", "pthread_setname_np",
            "open", "openat", "read", "write", "close", "fcntl", "getrandom", "clock_gettime",
            "getauxval", "sysconf", "getpid", "gettid", "__builtin_ia32_pause"]
KERNEL_TOKENS = [r"\bSYS_\w+", r"\bFUTEX_\w+", r"\bfutex\s*\(", r"\bMADV_\w+", r"\bPROT_(NONE|READ|WRITE)\b",
                 r"\bMAP_(ANONYMOUS|PRIVATE|FAILED)\b"]
KERNEL_HEADERS = ["sys/mman.h", "sys/syscall.h", "linux/futex.h", "sys/random.h", "sys/auxv.h",
                  "unistd.h", "fcntl.h", "sched.h", "pthread.h"]
# Kept for now, each with its reason; a stale one (no longer found) fails the test.
EXCEPTIONS = {
    ("src/kmem/lin.cpp", "pthread.h"): "pthread_once: libc's one-time initialisation, no kernel call",
}

CALL = re.compile(r"(?P<before>(?:\w+::|::|\.|->)?)\b(?P<name>" + "|".join(map(re.escape, SYSCALLS)) +
                  r")\s*\(")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def strip_code(text):
    """The text with comments and string/char literals blanked (newlines kept, so lines still count).
    #include lines are kept whole: their "..." is what the include rules read."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text[i] in "\"'":
            line_start = text.rfind("\n", 0, i) + 1
            if INCLUDE.match(text[line_start:i + 1] + "x\"") and text[i] == '"':
                j = text.find('"', i + 1)
                out.append(text[i:j + 1])
                i = j + 1
                continue
            q, j = text[i], i + 1
            while j < n and text[j] != q and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(q + " " * (j - i - 1) + (q if j < n else ""))
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def main(root):
    root = Path(root)
    offences, used = [], set()

    def offend(rel, lineno, key, what):
        for (f, k), _ in EXCEPTIONS.items():
            if f == rel and k == key:
                used.add((f, k))
                return
        offences.append(f"{rel}:{lineno}: {what}")

    for d, layer in LAYER_DIRS.items():
        for path in sorted((root / d).rglob("*")):
            if path.suffix not in (".h", ".hpp", ".cpp", ".c", ".cc"):
                continue
            rel = path.relative_to(root).as_posix()
            code = strip_code(path.read_text())
            core_rank = None
            if layer == "core":
                core_rank = CORE_RANK.get(path.stem)
                if core_rank is None:
                    offend(rel, 1, path.stem, f"{path.stem} is in no layer of CORE_LAYERS "
                           "(tests/layout/check_layers.py): say where it belongs")
            for lineno, line in enumerate(code.splitlines(), 1):
                m = INCLUDE.match(line)
                if m:
                    inc = m.group(2)
                    for bad in FORBIDDEN_INCLUDES[layer]:
                        if inc == bad or inc.startswith(bad) or inc.split("/")[-1] == bad:
                            offend(rel, lineno, inc.split("/")[-1],
                                   f'{layer} includes "{inc}", a file of a layer above it')
                    if core_rank is not None and inc.startswith("core/"):
                        target = CORE_RANK.get(Path(inc).stem)
                        if target is not None and target > core_rank:
                            offend(rel, lineno, inc, f'core layer "{CORE_LAYERS[core_rank][0]}" includes '
                                   f'"{inc}" of the higher layer "{CORE_LAYERS[target][0]}"')
                    if layer != "platform" and m.group(1) == "<" and inc in KERNEL_HEADERS:
                        offend(rel, lineno, inc, f"<{inc}> outside src/platform (ask platform/os.h)")
                    continue
                if layer == "platform":
                    continue
                for c in CALL.finditer(line):
                    before = c.group("before")
                    if before and before != "::":
                        continue   # os::read(, std::..., obj.read(, p->write(: not the kernel's
                    offend(rel, lineno, c.group("name"),
                           f"system call {c.group('name')}() outside src/platform (use os::)")
                for tok in KERNEL_TOKENS:
                    for t in re.finditer(tok, line):
                        offend(rel, lineno, t.group(0), f"kernel interface {t.group(0)} outside src/platform")
    for key, why in EXCEPTIONS.items():
        if key not in used:
            offences.append(f"{key[0]}: the exception for {key[1]} ({why}) matches nothing: remove it "
                            "from tests/layout/check_layers.py")
    for o in offences:
        print(o)
    if offences:
        print(f"check_layers: {len(offences)} offence(s)")
        return 1
    print("check_layers: the layers point one way; only src/platform calls the kernel")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]))
