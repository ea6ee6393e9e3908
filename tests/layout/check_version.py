#!/usr/bin/env python3
"""One version, meson's: kmalloc.h's KMALLOC_VERSION_MAJOR/MINOR/PATCH and debian/changelog's newest
entry must say meson.project_version(); the start-up banner and the tools take it from meson
(KM_VERSION, @VERSION@), so the source must not spell a version of its own.
Usage: check_version.py SOURCE_ROOT VERSION
"""
import re
import sys
from pathlib import Path


def main(root, version):
    root = Path(root)
    errors = []
    header = (root / "src/api/kmalloc.h").read_text()
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"^#define KMALLOC_VERSION_{name} (\d+)$", header, re.M)
        parts.append(m.group(1) if m else "?")
    if ".".join(parts) != version:
        errors.append(f"src/api/kmalloc.h: KMALLOC_VERSION_* say {'.'.join(parts)}, meson says {version}")
    changelog = (root / "debian/changelog").read_text().splitlines()[0]
    m = re.match(r"\S+ \(([^)-]+)(-[^)]*)?\)", changelog)
    if not m or m.group(1) != version:
        errors.append(f"debian/changelog: the newest entry is {m.group(1) if m else '?'}, meson says {version}")
    options = (root / "src/core/options.cpp").read_text()
    if "KM_VERSION" not in options or re.search(r'libkmalloc \d', options):
        errors.append("src/core/options.cpp: the banner must print KM_VERSION (meson's), not a literal")
    for e in errors:
        print(e)
    if not errors:
        print(f"check_version: {version} everywhere")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
