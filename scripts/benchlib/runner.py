#!/usr/bin/python3
"""The benchmark runner behind scripts/bench: runs every workload of bench/suite under each allocator,
interleaved across repetitions, and reports medians of wall time and peak RSS as ratios to glibc and to
mimalloc, 2-thread scaling, Google Benchmark micro timings and callgrind instruction counts.

Only the Python standard library; the chart (chart.py) is the one part that needs matplotlib.
Measurements come from bench-exec (bench/suite/bench_exec.cpp): fork/exec + wait4 rusage in a tiny
static process, so the runner's own memory is never counted in a workload's peak RSS.
"""
import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name, shared library (None = the system's glibc malloc, no preload), how to get it when missing.
ALLOCATORS = [
    ("glibc", None, None),
    ("kmalloc", "{builddir}/preload/libkmalloc.so", "build it with scripts/build (preload/libkmalloc.so)"),
    ("mimalloc", LIBDIR + "/libmimalloc.so.2", "apt-get install libmimalloc2.0 (scripts/bootstrap)"),
    ("jemalloc", LIBDIR + "/libjemalloc.so.2", "apt-get install libjemalloc2 (scripts/bootstrap)"),
    ("tcmalloc", LIBDIR + "/libtcmalloc_minimal.so.4", "apt-get install libtcmalloc-minimal4 (scripts/bootstrap)"),
]


class Workload:
    """One row of the table: a program of bench/suite with its arguments. `threads` is the thread
    count it runs with when it takes --threads (None for single-threaded and fixed-thread ones);
    threaded workloads are also run with --threads 1 for the scaling table."""

    def __init__(self, name, program, args, threads=None):
        self.name, self.program, self.args, self.threads = name, program, list(args), threads

    def command(self, suite_dir, scale, threads=None):
        argv = [os.path.join(suite_dir, self.program)] + self.args
        if self.threads is not None:
            argv += ["--threads", str(threads if threads is not None else self.threads)]
        if scale != 1.0:
            argv += ["--scale", repr(scale)]
        return argv


def workloads(threads):
    return [
        Workload("churn", "churn", ["--threads", "1"]),
        Workload("churn-mt", "churn", [], threads),
        Workload("larson", "larson", [], threads),
        Workload("prodcons", "prodcons", ["--pairs", str(max(1, threads // 2))]),
        Workload("cache-scratch", "false-sharing", ["--mode", "scratch"], threads),
        Workload("cache-thrash", "false-sharing", ["--mode", "thrash"], threads),
        Workload("tree", "tiny-objects", ["--mode", "tree"]),
        Workload("list", "tiny-objects", ["--mode", "list"]),
        Workload("realloc", "realloc-growth", []),
        Workload("large", "large-blocks", []),
        # Issue 9: large blocks across threads, big zeroed arrays. Issue 12: the shapes where kmalloc
        # trailed. The ones that hand blocks between threads need two, so they run with at least two
        # and stay out of the scaling table (at one thread nothing would be remote).
        Workload("large-mt", "large-mt", ["--threads", str(max(2, threads))]),
        Workload("big-replace", "big-replace", []),
        Workload("random-table", "random-table", []),
        Workload("inv-square", "inv-square", [], threads),
        Workload("batch-fifo", "batch", ["--order", "fifo"]),
        Workload("batch-lifo", "batch", ["--order", "lifo"]),
        Workload("handoff-mix", "handoff-mix", ["--threads", str(max(2, threads))]),
        Workload("xmalloc", "xmalloc", ["--threads", str(max(2, threads))]),
        Workload("thread-churn", "thread-churn", ["--threads", str(threads)]),
    ]


# ---- running one measurement ------------------------------------------------------------------------

RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_kv(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def measure(bench_exec, argv, lib, timeout, env=None):
    """Runs argv under bench-exec with `lib` preloaded. Returns a dict: wall_s, maxrss_kb, user_s, sys_s,
    minflt, status, plus the program's RESULT fields (mops, check, ...) and `error` when it failed."""
    with tempfile.NamedTemporaryFile("r", prefix="kmb-", suffix=".m") as mf:
        cmd = [bench_exec, "--preload", lib or "", "--timeout", str(int(timeout)), "--out", mf.name, "--"] + argv
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        m = parse_kv(mf.read())
    rec = {}
    for k in ("wall_s", "user_s", "sys_s"):
        rec[k] = float(m.get(k, "nan"))
    for k in ("maxrss_kb", "minflt", "majflt", "status"):
        rec[k] = int(m.get(k, "-1"))
    res = RESULT_RE.findall(p.stdout)
    if res:
        fields = parse_kv(res[-1])
        rec["mops"] = float(fields.get("mops", "nan"))
        rec["check"] = fields.get("check", "?")
    else:
        rec["mops"], rec["check"] = float("nan"), "missing"
    rec["stdout"] = p.stdout
    if p.returncode != 0 or rec["status"] != 0 or rec["check"] != "ok":
        why = {124: "timed out", 127: "could not run"}.get(rec["status"])
        if why is None and rec["status"] > 128:
            why = "killed by signal %d" % (rec["status"] - 128)
        if why is None:
            why = "exit %d, self-check %s" % (rec["status"], rec["check"])
        tail = (p.stderr.strip().splitlines() or [""])[-1][:160]
        rec["error"] = why + (": " + tail if tail else "")
    return rec


# ---- progress ---------------------------------------------------------------------------------------

class Progress:
    def __init__(self, total):
        self.total, self.done, self.t0 = total, 0, time.time()
        self.tty = sys.stderr.isatty()
        self.last_label = None

    def step(self, label):
        el = time.time() - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else 0
        line = "[%3d/%d %3d%%] %-44s elapsed %s  eta %s" % (
            self.done + 1, self.total, 100 * self.done // max(1, self.total), label[:44], fmt_t(el), fmt_t(eta))
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
        else:
            head = label.split()[0]
            if head != self.last_label:
                print(line, file=sys.stderr, flush=True)
                self.last_label = head
        self.done += 1

    def note(self, msg):
        if self.tty:
            sys.stderr.write("\r\033[K")
        print(msg, file=sys.stderr, flush=True)

    def finish(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
        print("bench: %d runs in %s" % (self.done, fmt_t(time.time() - self.t0)), file=sys.stderr, flush=True)


def fmt_t(s):
    s = int(s)
    return "%d:%02d" % (s // 60, s % 60)


# ---- statistics and tables --------------------------------------------------------------------------

def median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def geomean(xs):
    xs = [x for x in xs if x == x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def ratio(a, b):
    return a / b if (a == a and b == b and b > 0) else float("nan")


def fx(r):
    return "–" if r != r else "%.2f×" % r


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def metric_table(title, wl_names, allocs, med, fmt_abs, have_mi):
    """med[(wl, alloc)] -> median value; cells are 'abs (× glibc, × mimalloc)'; last row: geomeans."""
    header = ["workload"] + allocs
    rows, per_alloc = [], {a: ([], []) for a in allocs}
    for w in wl_names:
        base, mi = med.get((w, "glibc"), float("nan")), med.get((w, "mimalloc"), float("nan"))
        row = [w]
        for a in allocs:
            v = med.get((w, a))
            if v is None or v != v:
                row.append("FAILED" if (w, a) in med else "–")
                continue
            rg, rm = ratio(v, base), ratio(v, mi)
            per_alloc[a][0].append(rg)
            per_alloc[a][1].append(rm)
            row.append("%s (%s%s)" % (fmt_abs(v), fx(rg), ", " + fx(rm) if have_mi else ""))
        rows.append(row)
    geo = {a: (geomean(per_alloc[a][0]), geomean(per_alloc[a][1])) for a in allocs}
    rows.append(["**geomean**"] + ["**%s%s**" % (fx(geo[a][0]), ", " + fx(geo[a][1]) if have_mi else "")
                                    for a in allocs])
    suffix = " (× glibc, × mimalloc)" if have_mi else " (× glibc)"
    return "### " + title + suffix + "\n\n" + md_table(header, rows), geo


# ---- callgrind ----------------------------------------------------------------------------------------

# Request sizes of the per-size table: tiny, the headline 64 B, small, the largest direct size's
# neighbourhood, and a medium lane (a few cells to a carve batch).
CG_SIZES = (16, 64, 256, 1000, 4000)


def callgrind_instructions(pairs_exe, lib, n, size):
    """Total instructions of `pairs --pairs n --size size` under callgrind (with lib preloaded)."""
    with tempfile.TemporaryDirectory(prefix="kmb-cg-") as d:
        out = os.path.join(d, "cg.out")
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if lib:
            env["LD_PRELOAD"] = lib
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                            pairs_exe, "--pairs", str(n), "--size", str(size)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
        if p.returncode != 0 or "check=ok" not in p.stdout:
            raise RuntimeError("callgrind run failed: " + (p.stderr.strip().splitlines() or ["?"])[-1])
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise RuntimeError("no instruction total in callgrind output")


# ---- profile ----------------------------------------------------------------------------------------

def profile(a, suite, allocs, libs):
    """--profile WORKLOAD: callgrind of one workload at about a twentieth of its size, per allocator; prints
    the total instructions and the top functions by their own instructions."""
    w = {x.name: x for x in workloads(a.threads)}.get(a.profile)
    if w is None:
        sys.exit("bench: unknown workload %s for --profile" % a.profile)
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        sys.exit("bench: --profile needs valgrind (scripts/bootstrap installs it)")
    if not allocs:
        sys.exit("bench: no allocator to profile (kmalloc is not built; pick others with --alloc)")
    argv = w.command(suite, 0.05)
    if w.program == "tiny-objects" and "tree" in w.args:
        argv += ["--depth", "15"]  # its iteration count does not scale below one round; shrink the trees
    os.makedirs(a.out, exist_ok=True)
    for al in allocs:
        out = os.path.join(a.out, "callgrind.%s.%s" % (a.profile, al))
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if libs[al]:
            env["LD_PRELOAD"] = libs[al]
        print("bench: callgrind %s under %s ..." % (" ".join(os.path.basename(x) if i == 0 else x
                                                            for i, x in enumerate(argv)), al), file=sys.stderr)
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if p.returncode != 0:
            print("bench: failed under %s: %s" % (al, (p.stderr.strip().splitlines() or ["?"])[-1]), file=sys.stderr)
            continue
        ann = subprocess.run(["callgrind_annotate", out], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        lines = ann.splitlines()
        total = next((ln for ln in lines if "PROGRAM TOTALS" in ln), "?")
        start = next((i for i, ln in enumerate(lines) if ln.rstrip().endswith("file:function")), len(lines))
        print("\n== %s under %s: %s" % (a.profile, al, total.strip()))
        print((RESULT_RE.findall(p.stdout) or ["(no RESULT line)"])[-1])
        for ln in lines[start + 2:start + 22]:
            if ln.strip():
                print("  " + ln.strip()[:150])
        print("  (full profile: callgrind_annotate %s; or kcachegrind)" % out)
    return 0


# ---- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--out", required=True, help="output directory (CSV, PNG, report.md)")
    ap.add_argument("--runs", type=int, help="repetitions of each workload (default 3, --quick 1)")
    ap.add_argument("--only", help="comma-separated workload names (also: micro, callgrind, scaling)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 2),
                    help="threads of the threaded workloads (default 2)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one run: about two minutes")
    ap.add_argument("--alloc", help="comma-separated allocators (default: all that are installed)")
    ap.add_argument("--timeout", type=int, default=180, help="seconds before one run is killed")
    ap.add_argument("--profile", metavar="WORKLOAD",
                    help="instead of benchmarking: run WORKLOAD (at --scale 0.05) under callgrind for each "
                         "selected allocator (default: kmalloc) and print where the instructions go")
    a = ap.parse_args()

    runs = a.runs if a.runs else (1 if a.quick else 3)
    scale = 0.25 if a.quick else 1.0
    suite = os.path.join(a.builddir, "bench", "suite")
    bench_exec = os.path.join(suite, "bench-exec")
    if not os.access(bench_exec, os.X_OK):
        sys.exit("bench: %s is missing; is %s a build of this repository with benches enabled?" % (bench_exec, a.builddir))
    os.makedirs(a.out, exist_ok=True)

    # Which allocators: installed ones, minus --alloc filtering; glibc is always the baseline.
    wanted = set(a.alloc.split(",")) if a.alloc else None
    allocs, libs = [], {}
    for name, lib, how in ALLOCATORS:
        if wanted is not None and name not in wanted and name != "glibc":
            continue
        path = lib.format(builddir=os.path.abspath(a.builddir)) if lib else None
        if path and not os.path.exists(path):
            print("bench: %s is not available (%s missing): %s; comparing the others." % (name, path, how),
                  file=sys.stderr)
            continue
        allocs.append(name)
        libs[name] = path
    have_mi = "mimalloc" in allocs

    if a.profile:
        chosen = set(a.alloc.split(",")) if a.alloc else {"kmalloc"}
        return profile(a, suite, [x for x in allocs if x in chosen], libs)

    only = set(a.only.split(",")) if a.only else None
    wls = [w for w in workloads(a.threads) if only is None or w.name in only]
    do_micro = (only is None or "micro" in only) and os.access(os.path.join(suite, "micro"), os.X_OK)
    do_cg = (only is None or "callgrind" in only) and shutil.which("valgrind") is not None
    do_scaling = a.threads > 1 and (only is None or "scaling" in only or any(w.threads for w in wls))
    if only:
        known = {w.name for w in workloads(a.threads)} | {"micro", "callgrind", "scaling"}
        bad = only - known
        if bad:
            sys.exit("bench: unknown --only name(s): %s (known: %s)" % (", ".join(sorted(bad)), ", ".join(sorted(known))))
        if "scaling" in only and not any(w.threads for w in wls):
            wls_scaling = [w for w in workloads(a.threads) if w.threads]
        else:
            wls_scaling = [w for w in wls if w.threads]
    else:
        wls_scaling = [w for w in wls if w.threads]
    if not do_scaling:
        wls_scaling = []

    # Plan: every (command, allocator) is run `runs` times; a scaling 1-thread command that equals a
    # table workload's command (churn-mt at 1 thread = churn) is measured once and shared.
    cmds = {}  # key -> argv
    wl_key, sc_key = {}, {}
    for w in wls:
        argv = w.command(suite, scale)
        wl_key[w.name] = tuple(argv)
        cmds[tuple(argv)] = argv
    for w in wls_scaling:
        argv1 = w.command(suite, scale, threads=1)
        sc_key[w.name] = (tuple(argv1), tuple(w.command(suite, scale)))
        for argv in (argv1, w.command(suite, scale)):
            cmds.setdefault(tuple(argv), argv)
    names = {}
    for w in wls:
        names.setdefault(wl_key[w.name], w.name)
    for w in wls_scaling:
        names.setdefault(sc_key[w.name][0], w.name + "@1t")
        names.setdefault(sc_key[w.name][1], w.name)

    try:
        with open("/proc/loadavg") as f:
            load = float(f.read().split()[0])
        if load > 0.5:
            print("bench: load average %.2f on %d CPUs before starting: other processes are running, so times "
                  "and especially thread scaling will be noisy" % (load, os.cpu_count() or 1), file=sys.stderr)
    except (OSError, ValueError):
        pass

    total = (len(cmds) * len(allocs) * runs + (len(allocs) if do_micro else 0)
             + (len(allocs) * 2 * len(CG_SIZES) + 2 if do_cg else 0))
    prog = Progress(total)
    print("bench: %d workload(s) x %d allocator(s) x %d run(s)%s, threads=%d, build %s" % (
        len(cmds), len(allocs), runs, " (quick)" if a.quick else "", a.threads, a.builddir), file=sys.stderr)

    results = {}  # (key, alloc) -> [rec]
    failures = []
    raw_rows = []
    for r in range(runs):
        for key, argv in cmds.items():
            k = r % len(allocs)
            order = allocs[k:] + allocs[:k]  # rotate so no allocator always runs first
            for al in order:
                prog.step("%s %s run %d/%d" % (names[key], al, r + 1, runs))
                rec = measure(bench_exec, argv, libs[al], a.timeout)
                results.setdefault((key, al), []).append(rec)
                raw_rows.append([names[key], al, r + 1, "%.6f" % rec["wall_s"], rec["maxrss_kb"], "%.6f" % rec["user_s"],
                                 "%.6f" % rec["sys_s"], rec["minflt"], "%.3f" % rec["mops"], rec["status"], rec["check"],
                                 " ".join(argv[1:])])
                if "error" in rec:
                    failures.append("%s under %s: %s" % (names[key], al, rec["error"]))
                    prog.note("bench: FAILED %s under %s: %s" % (names[key], al, rec["error"]))

    def med_of(key, al, field):
        recs = results.get((key, al), [])
        if not recs or any("error" in x for x in recs):
            return float("nan")
        if field == "cpu_s":
            return median([x["user_s"] + x["sys_s"] for x in recs])
        return median([x[field] for x in recs])

    # ---- micro (Google Benchmark), one run per allocator ----
    micro = {}  # (bench, alloc) -> ns per item
    micro_names = []
    if do_micro:
        min_time = "0.02" if a.quick else "0.1"
        for al in allocs:
            prog.step("micro %s" % al)
            with tempfile.NamedTemporaryFile("r", prefix="kmb-", suffix=".json") as jf:
                argv = [os.path.join(suite, "micro"), "--benchmark_min_time=" + min_time,
                        "--benchmark_out=" + jf.name, "--benchmark_out_format=json", "--benchmark_format=console"]
                rec = measure(bench_exec, argv, libs[al], a.timeout)
                if "error" in rec:
                    failures.append("micro under %s: %s" % (al, rec["error"]))
                    prog.note("bench: FAILED micro under %s: %s" % (al, rec["error"]))
                    continue
                data = json.load(jf)
            for b in data.get("benchmarks", []):
                ips = b.get("items_per_second")
                if not ips:
                    continue
                micro[(b["name"], al)] = 1e9 / ips
                if b["name"] not in micro_names:
                    micro_names.append(b["name"])

    # ---- callgrind: instructions per malloc+free pair, 64 bytes (the headline) and other sizes ----
    raw, loop = {}, float("nan")   # (allocator, size) -> instructions per pair, loop included
    if do_cg:
        n = 100_000 if a.quick else 200_000
        pairs = os.path.join(suite, "pairs")
        try:
            prog.step("callgrind loop baseline")
            b1 = callgrind_instructions(pairs, None, n, 0)
            prog.step("callgrind loop baseline 2N")
            b2 = callgrind_instructions(pairs, None, 2 * n, 0)
            loop = (b2 - b1) / n
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            loop = float("nan")
            prog.note("bench: callgrind baseline failed: %s" % e)
        for al in allocs:
            for size in CG_SIZES:
                try:
                    prog.step("callgrind %s %d B N" % (al, size))
                    i1 = callgrind_instructions(pairs, libs[al], n, size)
                    prog.step("callgrind %s %d B 2N" % (al, size))
                    i2 = callgrind_instructions(pairs, libs[al], 2 * n, size)
                    raw[(al, size)] = (i2 - i1) / n
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    prog.note("bench: callgrind under %s (%d B) failed: %s" % (al, size, e))
    prog.finish()
    cg_sizes = {k: v - loop for k, v in raw.items()}
    cg = {al: (raw[(al, 64)] - loop, raw[(al, 64)]) for al in allocs if (al, 64) in raw}

    # ---- report ----
    report = []
    report.append("Medians of %d run(s)%s; %d threads in the threaded workloads; wall time and peak RSS of the "
                  "whole process (bench-exec: fork/exec + wait4)." % (runs, ", --quick sizes" if a.quick else "", a.threads))
    wl_names = [w.name for w in wls]
    med_t = {(w.name, al): med_of(wl_key[w.name], al, "wall_s") for w in wls for al in allocs}
    med_r = {(w.name, al): med_of(wl_key[w.name], al, "maxrss_kb") / 1024.0 for w in wls for al in allocs}
    med_c = {(w.name, al): med_of(wl_key[w.name], al, "cpu_s") for w in wls for al in allocs}
    geo_t = geo_r = geo_c = {}
    if wls:
        t, geo_t = metric_table("Wall time, seconds", wl_names, allocs, med_t, lambda v: "%.3f" % v, have_mi)
        m, geo_r = metric_table("Peak RSS, MiB", wl_names, allocs, med_r, lambda v: "%.1f" % v, have_mi)
        c, geo_c = metric_table("CPU time (user+sys), seconds", wl_names, allocs, med_c, lambda v: "%.3f" % v, have_mi)
        report += [t, m, c + "\n\nCPU time is less disturbed than wall time by other jobs on the machine; on an "
                   "idle machine it equals wall time for the single-threaded workloads."]

    scaling = {}
    if wls_scaling:
        rows = []
        for w in wls_scaling:
            k1, k2 = sc_key[w.name]
            row = [w.name]
            for al in allocs:
                m1, m2 = med_of(k1, al, "mops"), med_of(k2, al, "mops")
                scaling[(w.name, al)] = (m1, m2, ratio(m2, m1))
                row.append("–" if m1 != m1 or m2 != m2 else "%.1f → %.1f (%s)" % (m1, m2, fx(ratio(m2, m1))))
            rows.append(row)
        rows.append(["**geomean**"] + ["**%s**" % fx(geomean([scaling[(w.name, al)][2] for w in wls_scaling]))
                                       for al in allocs])
        report.append("### Scaling: throughput (Mops/s) at 1 → %d threads, per-thread work fixed\n\n" % a.threads
                      + md_table(["workload"] + allocs, rows))

    if micro_names:
        rows, per = [], {al: ([], []) for al in allocs}
        for bn in micro_names:
            row = [bn]
            for al in allocs:
                v = micro.get((bn, al))
                if v is None:
                    row.append("–")
                    continue
                rg, rm = ratio(v, micro.get((bn, "glibc"), float("nan"))), ratio(v, micro.get((bn, "mimalloc"), float("nan")))
                per[al][0].append(rg)
                per[al][1].append(rm)
                row.append("%.1f" % v)
            rows.append(row)
        rows.append(["**geomean**"] + ["**%s%s**" % (fx(geomean(per[al][0])), ", " + fx(geomean(per[al][1])) if have_mi else "")
                                       for al in allocs])
        report.append("### Micro-benchmarks (Google Benchmark), ns per operation (geomean × glibc%s)\n\n"
                      % (", × mimalloc" if have_mi else "") + md_table(["benchmark"] + allocs, rows))

    if cg:
        rows = [[al, "%.1f" % cg[al][0], "%.1f" % cg[al][1]] for al in allocs if al in cg]
        report.append("### Instructions per 64-byte malloc+free pair (callgrind, N vs 2N pairs)\n\n"
                      "Both calls and their PLT jumps included; the benchmark loop's own instructions "
                      "(%.1f per iteration) subtracted in the first column.\n\n" % loop
                      + md_table(["allocator", "instructions/pair", "with loop"], rows))
        rows = [[al] + ["%.1f" % cg_sizes[(al, z)] if (al, z) in cg_sizes else "-" for z in CG_SIZES]
                for al in allocs]
        report.append("### Instructions per pair by request size (callgrind, loop subtracted)\n\n"
                      "One block at a time: where its page empties on every free, and (for medium sizes) "
                      "where a few cells cycle through the page's free lists.\n\n"
                      + md_table(["allocator"] + ["%d B" % z for z in CG_SIZES], rows))

    if failures:
        report.append("### Failures\n\n" + "\n".join("- " + f for f in failures))

    text = "\n\n".join(report) + "\n"
    print(text)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(text)

    # ---- CSVs ----
    with open(os.path.join(a.out, "runs.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "allocator", "run", "wall_s", "maxrss_kb", "user_s", "sys_s", "minflt", "mops",
                     "status", "check", "args"])
        wr.writerows(raw_rows)
    with open(os.path.join(a.out, "summary.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["kind", "name", "allocator", "value", "ratio_glibc", "ratio_mimalloc"])
        for w in wl_names:
            for al in allocs:
                for kind, med in (("wall_s", med_t), ("maxrss_mib", med_r), ("cpu_s", med_c)):
                    v = med[(w, al)]
                    wr.writerow([kind, w, al, "%.6g" % v, "%.4f" % ratio(v, med[(w, "glibc")]),
                                 "%.4f" % ratio(v, med.get((w, "mimalloc"), float("nan")))])
        for al in allocs:
            if geo_t:
                wr.writerow(["geomean_wall", "", al, "", "%.4f" % geo_t[al][0], "%.4f" % geo_t[al][1]])
                wr.writerow(["geomean_rss", "", al, "", "%.4f" % geo_r[al][0], "%.4f" % geo_r[al][1]])
                wr.writerow(["geomean_cpu", "", al, "", "%.4f" % geo_c[al][0], "%.4f" % geo_c[al][1]])
        for (w, al), (m1, m2, r) in scaling.items():
            wr.writerow(["scaling_%dt_over_1t" % a.threads, w, al, "%.4f" % r, "", ""])
        for (bn, al), v in micro.items():
            wr.writerow(["micro_ns", bn, al, "%.3f" % v, "%.4f" % ratio(v, micro.get((bn, "glibc"), float("nan"))),
                         "%.4f" % ratio(v, micro.get((bn, "mimalloc"), float("nan")))])
        for (al, size), v in cg_sizes.items():
            wr.writerow(["callgrind_instr_per_pair", "%d" % size, al, "%.1f" % v,
                         "%.4f" % ratio(v, cg_sizes.get(("glibc", size), float("nan"))),
                         "%.4f" % ratio(v, cg_sizes.get(("mimalloc", size), float("nan")))])
        for al, (v, raw) in cg.items():
            wr.writerow(["callgrind_instr_per_pair64", "", al, "%.1f" % v, "%.4f" % ratio(v, cg.get("glibc", (float("nan"),))[0]),
                         "%.4f" % ratio(v, cg.get("mimalloc", (float("nan"),))[0])])

    # ---- chart ----
    if wls:
        chart = os.path.join(a.out, "bench.png")
        try:
            import chart as chartmod  # scripts/benchlib/chart.py; needs Debian's python3-matplotlib
            chartmod.draw(chart, wl_names, allocs, med_t, med_r, geo_t, geo_r, runs)
            print("bench: wrote %s, %s, %s, %s" % (os.path.join(a.out, "report.md"), os.path.join(a.out, "runs.csv"),
                                                     os.path.join(a.out, "summary.csv"), chart), file=sys.stderr)
        except ImportError as e:
            print("bench: no chart (%s); install python3-matplotlib (scripts/bootstrap)" % e, file=sys.stderr)
    # Timing never fails the run; a crash or a failed self-check does.
    if failures:
        print("bench: %d run(s) failed (crash, timeout or self-check); see above" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
