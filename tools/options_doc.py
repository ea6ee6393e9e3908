#!/usr/bin/python3
"""The documentation of the KMALLOC_* options, generated from their one table (kTable in
src/core/options.cpp), so that the README's options table and the man pages cannot drift from it.

  options_doc.py man --options options.cpp [--version V] [--ablib DIR] TEMPLATE OUT
        a man page from TEMPLATE: @OPTIONS@ becomes the variables (roff), @VERSION@ the version,
        @DATE@ the date (SOURCE_DATE_EPOCH if set), @AB_OPTIONS@ kmalloc-ab's options (its argparse
        parser, imported from DIR/ablib)
  options_doc.py readme --options options.cpp README.md [--write]
        checks (or rewrites, with --write) the README's table between the markers
        <!-- options:begin --> and <!-- options:end -->
  options_doc.py check-man --options options.cpp MANPAGE
        checks that a generated man page describes every row of the table, exactly
"""
import argparse
import datetime
import os
import re
import sys

BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"
# Defaults that are macros in the table: what they are in a default build.
MACRO_DEFAULTS = {"KM_SECURE_DEFAULT": "0"}


class OptionsError(Exception):
    pass


def _split_top(text, sep=","):
    """Splits at `sep` outside strings and braces."""
    out, depth, cur, in_str, esc = [], 0, [], False, False
    for c in text:
        if in_str:
            cur.append(c)
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _c_string(expr):
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', expr)
    if not parts:
        raise OptionsError(f"expected a string literal, got {expr!r}")
    return "".join(parts).encode().decode("unicode_escape")


def rows(options_cpp):
    """The table's rows: dicts with name, default, min, max, doc, is_path (strings as shown)."""
    text = open(options_cpp, encoding="utf-8").read()
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"OptionInfo\s+kTable\s*\[[^\]]*\]\s*=\s*\{(.*?)\n\s*\};", text, re.S)
    if not m:
        raise OptionsError(f"{options_cpp}: no kTable found")
    out = []
    for row in _split_top(m.group(1)):
        if not row:
            continue
        if not (row.startswith("{") and row.endswith("}")):
            raise OptionsError(f"{options_cpp}: unexpected row {row!r}")
        f = _split_top(row[1:-1])
        if len(f) not in (5, 6):
            raise OptionsError(f"{options_cpp}: a row needs name, def, min, max, doc[, is_path]: {row!r}")
        is_path = len(f) == 6 and f[5] == "true"
        default = MACRO_DEFAULTS.get(f[1], f[1])
        if not re.fullmatch(r"-?\d+", default):
            raise OptionsError(f"{options_cpp}: default {f[1]!r} of {f[0]} is neither a number nor known")
        out.append({"name": _c_string(f[0]), "default": default, "min": f[2], "max": f[3],
                    "doc": _c_string(f[4]), "is_path": is_path})
    return out


def shown_default(r):
    return "unset (stderr)" if r["is_path"] else r["default"]


def shown_range(r):
    return "a path" if r["is_path"] else f"{r['min']}–{r['max']}"


def readme_table(table):
    lines = ["| variable | default | range | meaning |", "| --- | --- | --- | --- |"]
    for r in table:
        lines.append(f"| `{r['name']}` | {shown_default(r)} | {shown_range(r)} | {r['doc']} |")
    return lines


def roff_escape(s):
    s = s.replace("\\", "\\e").replace("-", "\\-").replace("–", "\\(en")
    return "\\&" + s if s[:1] in (".", "'") else s


def man_options(table):
    out = []
    for r in table:
        out += [".TP", f".B {r['name']}",
                roff_escape(f"{r['doc']} (default: {shown_default(r)}; range: {shown_range(r)})")]
    return out


def man_ab_options(ablib_dir):
    """kmalloc-ab's options from its own argparse parser, as roff .TP items."""
    sys.path.insert(0, ablib_dir)
    from ablib.__main__ import build_parser  # noqa: E402
    p = build_parser(prog="kmalloc-ab", default_out="./kmalloc-ab-out", checkout=False, version="x")
    out = []
    for a in p._actions:
        if not a.option_strings:
            continue
        flags = ", ".join(a.option_strings)
        metavar = "" if a.nargs == 0 else " " + (a.metavar or a.dest.upper())
        helptext = (a.help or "") % {"default": a.default, "prog": p.prog}
        out += [".TP", ".B " + roff_escape(flags) + ("" if not metavar else " \\fI" + roff_escape(metavar.strip()) + "\\fR"),
                roff_escape(helptext)]
    return out


def man(template, out, table, version, ablib_dir=None):
    text = open(template, encoding="utf-8").read()
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else \
        datetime.datetime.now(datetime.timezone.utc)
    text = text.replace("@VERSION@", version).replace("@DATE@", when.strftime("%Y-%m-%d"))
    text = text.replace("@OPTIONS@", "\n".join(man_options(table)))
    if "@AB_OPTIONS@" in text:
        if not ablib_dir:
            raise OptionsError(f"{template} needs --ablib")
        text = text.replace("@AB_OPTIONS@", "\n".join(man_ab_options(ablib_dir)))
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)


def readme(path, table, write):
    text = open(path, encoding="utf-8").read()
    if BEGIN not in text or END not in text:
        raise OptionsError(f"{path}: the markers {BEGIN} and {END} around the options table are missing")
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    want = "\n" + "\n".join(readme_table(table)) + "\n"
    if body == want:
        return True
    if write:
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + BEGIN + want + END + tail)
        return True
    have = [line for line in body.strip().splitlines()]
    print(f"{path}: the options table differs from src/core/options.cpp "
          f"(fix with: tools/options_doc.py readme --options src/core/options.cpp {path} --write)",
          file=sys.stderr)
    for line in readme_table(table):
        if line not in have:
            print(f"  expected: {line}", file=sys.stderr)
    for line in have:
        if line not in readme_table(table):
            print(f"  found:    {line}", file=sys.stderr)
    return False


def check_man(path, table):
    text = open(path, encoding="utf-8").read()
    want = "\n".join(man_options(table))
    if want in text:
        return True
    print(f"{path}: its options section differs from the table in options.cpp", file=sys.stderr)
    for r in table:
        if f".B {r['name']}\n" not in text:
            print(f"  missing: {r['name']}", file=sys.stderr)
    return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("man")
    m.add_argument("--options", required=True)
    m.add_argument("--version", default="")
    m.add_argument("--ablib")
    m.add_argument("template")
    m.add_argument("out")
    r = sub.add_parser("readme")
    r.add_argument("--options", required=True)
    r.add_argument("--write", action="store_true")
    r.add_argument("path")
    c = sub.add_parser("check-man")
    c.add_argument("--options", required=True)
    c.add_argument("path")
    args = p.parse_args(argv)
    try:
        table = rows(args.options)
        if args.cmd == "man":
            man(args.template, args.out, table, args.version, args.ablib)
            return 0
        if args.cmd == "readme":
            return 0 if readme(args.path, table, args.write) else 1
        return 0 if check_man(args.path, table) else 1
    except OptionsError as e:
        print(f"options_doc.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
