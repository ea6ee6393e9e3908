"""kmalloc-ab — compare the memory use and speed of a program under several allocators.

Two front ends run this code: scripts/ab in a checkout (it installs the dependencies and builds
first, then uses the build directory) and the installed kmalloc-ab (package kmalloc-tools, which uses
the installed library, probe and workloads). See docs/ab.md and kmalloc-ab(1).
"""
import argparse
import datetime
import os
import platform
import shlex
import sys
import time

from . import allocators as alloc_mod
from . import report, runner, workloads as wl_mod
from .layout import Layout

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EPILOG = """\
examples:
  {prog}                                   the built-in workloads under the default allocators
  {prog} --runs 5 --workloads server,phase
  {prog} --allocators glibc,kmalloc -- /usr/bin/python3 myscript.py
  {prog} --allocators glibc,mine=/opt/lib/libmine.so -- ./server --bench
  {prog} --json > result.json

allocators: glibc, glibc-arena2 (MALLOC_ARENA_MAX=2), kmalloc, mimalloc, jemalloc, tcmalloc,
or NAME=/path/to/lib.so. The command sees KM_AB_ALLOCATOR=<name> in its environment.
Without --allocators, the default ones that are installed run (a note names the Debian package of
each one missing).
"""


def build_parser(prog="scripts/ab", default_out=os.path.join(REPO, "out", "ab"), checkout=True, version=None):
    """The command line of scripts/ab (checkout=True) or kmalloc-ab; also read for kmalloc-ab(1)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0].split(" — ")[1],
                                epilog=EPILOG.format(prog=prog.ljust(10)),
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage=f"{prog} [options] [-- COMMAND ARGS...]")
    if version:
        p.add_argument("--version", action="version", version=f"{prog} {version}")
    p.add_argument("--allocators", default=None,
                   help="comma-separated list (default: those of %s that are installed)" % ",".join(alloc_mod.DEFAULT))
    p.add_argument("--lib", action="append", default=[], metavar="NAME=PATH",
                   help="use PATH as the library of a known allocator (repeatable)")
    p.add_argument("--runs", type=int, default=3, help="runs per allocator and workload (default: 3)")
    p.add_argument("--workloads", default=None,
                   help="built-in workloads to run (default: all: server,phase,handoff,python)")
    p.add_argument("--scale", type=float, default=None, help="shrink or grow the built-in workloads")
    p.add_argument("--name", default=None, help="label of COMMAND in the output (default: its basename)")
    p.add_argument("--no-probe", action="store_true", help="do not preload the live-bytes probe")
    p.add_argument("--timing-runs", "--overhead-runs", dest="timing_runs", type=int, default=None,
                   help="runs without the probe per allocator and workload, each right after a probed run: "
                        "the time and fault columns come from them, and each pair measures the probe's "
                        "overhead (default: as many as --runs; 0: times from the probed runs)")
    p.add_argument("--interval", type=float, default=10.0, help="sampling interval in ms (default: 10)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is killed (default: 600)")
    p.add_argument("--out", default=default_out,
                   help="output directory (default: %s)" % ("out/ab" if checkout else "./kmalloc-ab-out"))
    p.add_argument("--no-plot", action="store_true", help="skip the PNG/SVG plots")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (table on stderr)")
    if checkout:
        p.add_argument("--build-dir", default=os.path.join(REPO, "build"), help="kmalloc's build directory")
        p.add_argument("--no-build", action="store_true",
                       help="do not run scripts/bootstrap and scripts/build (use --build-dir as it is)")
    return p


def parse_args(argv, layout=None):
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    else:
        command = []
    if layout is None:
        p = build_parser()
    else:
        p = build_parser(layout.prog, layout.default_out, checkout=False, version=layout.version)
    args = p.parse_args(argv)
    args.command = command
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.timing_runs is None:
        args.timing_runs = args.runs
    if args.timing_runs < 0:
        p.error("--timing-runs must be >= 0")
    if command and args.workloads:
        p.error("--workloads selects built-in workloads; it cannot be combined with a COMMAND")
    return args


class Progress:
    """One status line on stderr, rewritten in place on a terminal."""

    def __init__(self, total):
        self.total, self.done, self.tty = total, 0, sys.stderr.isatty()
        self.t0 = time.monotonic()

    def show(self, text):
        elapsed = time.monotonic() - self.t0
        line = f"[{self.done + 1}/{self.total} {elapsed:5.0f}s] {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


PROG = "scripts/ab"


def fail(msg, code=2):
    print(f"{PROG}: {msg}", file=sys.stderr)
    sys.exit(code)


def main(argv=None, layout=None):
    """scripts/ab (layout None: the checkout's build directory, --build-dir) or kmalloc-ab (the
    installed layout)."""
    global PROG
    args = parse_args(sys.argv[1:] if argv is None else argv, layout)
    if layout is None:
        layout = Layout.checkout(REPO, os.path.abspath(args.build_dir))
    PROG = layout.prog
    try:
        if args.allocators is None:
            allocs, missing = alloc_mod.resolve_available(alloc_mod.DEFAULT, layout, args.lib)
            for a in missing:
                print(f"{PROG}: {a.name} skipped: {alloc_mod.missing_hint(a, layout)}", file=sys.stderr)
        else:
            allocs = alloc_mod.resolve(args.allocators.split(","), layout, args.lib)
    except alloc_mod.AllocatorError as e:
        fail(str(e))
    names = [a.name for a in allocs]

    probe_lib = None
    if not args.no_probe:
        probe_lib = layout.probe_lib
        if not os.path.isfile(probe_lib):
            fail(f"probe library {probe_lib} not found ({layout.probe_hint})")

    if args.command:
        name = args.name or os.path.basename(args.command[0])
        works = [wl_mod.Workload(name, args.command, about=shlex.join(args.command))]
    else:
        table = wl_mod.builtin(layout.workload_dir, layout.python_script, args.scale)
        chosen = args.workloads.split(",") if args.workloads else list(table)
        unknown = [w for w in chosen if w not in table]
        if unknown:
            fail(f"unknown workload {', '.join(unknown)}: known are {', '.join(table)}")
        works = [table[w] for w in chosen]
        missing = wl_mod.check_built(works, layout.prog)
        if missing:
            fail("; ".join(missing))

    os.makedirs(args.out, exist_ok=True)
    log_dir = os.path.join(args.out, "logs")
    os.makedirs(log_dir, exist_ok=True)

    # The plan: runs interleaved (every allocator once per round, the order rotating from round to
    # round). In the first --timing-runs rounds each probed run is followed at once by the same run
    # without the probe: the times come from those, and the pair, on the same machine, gives the
    # probe's overhead.
    plan = []
    for i in range(args.runs):
        for w in works:
            for k in range(len(allocs)):
                a = allocs[(k + i) % len(allocs)]
                plan.append((w, a, i + 1, probe_lib))
                if probe_lib and i < args.timing_runs:
                    plan.append((w, a, i + 1, None))
    progress = Progress(len(plan))
    runs = []
    for w, a, index, probe in plan:
        progress.show(f"{w.name} under {a.name}, run {index}{'' if probe else ' (no probe)'}")
        r = runner.Run(w.name, a.name, index, probe=bool(probe) if probe_lib else None)
        runner.run_once(r, w.argv, a, probe, log_dir, interval=args.interval / 1000.0, timeout=args.timeout,
                        extra_env=w.env)
        runs.append(r)
        progress.done += 1
        if not r.ok:
            progress.finish()
            print(f"{PROG}: {w.name} under {a.name} (run {index}) failed: {r.error}", file=sys.stderr)
    progress.finish()

    wnames = [w.name for w in works]
    summary = report.summarize(runs, names, wnames)
    rat = report.ratios(summary, names) if "glibc" in names else {}
    ovh = report.overhead(runs, names, wnames)
    has_probe = probe_lib is not None

    text = [report.table(summary, names, probe=has_probe)]
    if rat and len(works) > 1:
        text += [report.ratio_table(rat, names, probe=has_probe), ""]
    if ovh:
        text += [report.overhead_table(ovh), ""]
    failures = [r for r in runs if not r.ok]
    for r in failures:
        text.append(f"FAILED: {r.workload} under {r.allocator} (run {r.index}{'' if r.probe is not False else ', no probe'}): "
                    f"{r.error}")
        if r.stderr_tail:
            text += ["  stderr (last lines):"] + ["    " + line for line in r.stderr_tail.splitlines()]
    if has_probe:
        text.append("frag = RSS / live bytes (requested, not yet freed); RSS excludes the probe's own table;")
        if args.timing_runs:
            text.append("wall, cpu and faults: medians of the runs without the probe; memory: of the probed runs.")
        else:
            text.append("times include the probe's per-call cost, which narrows every ratio (--timing-runs).")

    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
            "kernel": platform.release(), "cpus": os.cpu_count(), "runs": args.runs,
            "timing_runs": args.timing_runs if has_probe else 0, "interval_ms": args.interval,
            "probe": has_probe, "allocators": {a.name: {"lib": a.lib, "env": a.env} for a in allocs},
            "workloads": {w.name: {"argv": w.argv, "env": w.env, "about": w.about} for w in works}}
    report.write_runs_csv(os.path.join(args.out, "runs.csv"), runs)
    report.write_summary_csv(os.path.join(args.out, "summary.csv"), summary)
    report.write_samples_csv(os.path.join(args.out, "samples.csv"), runs)
    js = report.to_json(summary, rat, ovh, runs, meta)
    with open(os.path.join(args.out, "result.json"), "w") as f:
        f.write(js + "\n")
    plots = []
    if not args.no_plot:
        try:
            from . import plot  # matplotlib is slow to import; only when needed
        except ImportError as e:
            print(f"{PROG}: no plots ({e}): install the Debian package python3-matplotlib", file=sys.stderr)
        else:
            plots = plot.all_plots(args.out, runs, summary, names, probe=has_probe)
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write("\n".join(text) + "\n")

    human = sys.stderr if args.json else sys.stdout
    print("\n".join(text), file=human)
    print(f"wrote {args.out}/: summary.csv runs.csv samples.csv result.json table.txt"
          + (f" and {len(plots)} plots (summary.png, timeline-*.png, .svg)" if plots else ""), file=human)
    if args.json:
        print(js)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
