"""Summaries of the runs: medians per allocator, ratios to glibc, the terminal table, CSV and JSON."""
import csv
import json
import math
import statistics

MiB = 1024 * 1024

# (key, column title, kind) in table order. kind: 's' seconds, 'b' bytes, 'n' count, 'x' ratio.
METRICS = [
    ("wall_s", "wall s", "s"),
    ("cpu_s", "cpu s", "s"),
    ("peak_rss", "peak RSS MiB", "b"),
    ("avg_rss", "avg RSS MiB", "b"),
    ("final_rss", "end RSS MiB", "b"),
    ("faults", "faults", "n"),
    ("frag_avg", "frag avg", "x"),
    ("frag_end", "frag end", "x"),
]
BASELINE = "glibc"
# What the probe itself changes: its per-call cost adds seconds to every run (which pulls every time
# ratio toward 1), and its table's pages fault in. Where runs without the probe exist, these medians
# come from them; memory and fragmentation always come from the probed runs.
TIMING = ("wall_s", "cpu_s", "faults")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs, allocators, workloads):
    """{workload: {allocator: {"ok": bool, "runs": n, "timing_runs": n, metric: median, ..., "errors": [...]}}}.
    "runs" counts the probed runs (or, with --no-probe, all runs); TIMING keys come from the runs without
    the probe where there are any ("timing_runs" of them)."""
    out = {}
    for w in workloads:
        out[w] = {}
        for a in allocators:
            mine = [r for r in runs if r.workload == w and r.allocator == a and r.probe is not False]
            probed = [r for r in mine if r.ok]
            entry = {"ok": bool(mine) and len(probed) == len(mine), "runs": len(probed),
                     "errors": [{"run": r.index, "error": r.error, "stderr_tail": r.stderr_tail}
                                for r in mine if not r.ok]}
            ms = [r.metrics() for r in probed]
            for key in list(ms[0].keys()) if ms else [m[0] for m in METRICS]:
                entry[key] = median([m.get(key) for m in ms])
            timed = [r.metrics() for r in runs
                     if r.workload == w and r.allocator == a and r.probe is False and r.ok]
            entry["timing_runs"] = len(timed) if timed else len(probed)
            for key in TIMING if timed and probed else ():
                entry[key] = median([m.get(key) for m in timed])
            out[w][a] = entry
    return out


def overhead(runs, allocators, workloads):
    """Probe overhead per workload and allocator: the median over pairs (a probed run and the run
    without the probe right after it) of with/without for wall, cpu and peak RSS, and the probe's own
    resident table. {workload: {allocator: {...}}}; empty when no run went without the probe."""
    out = {}
    for w in workloads:
        for a in allocators:
            probed = {r.index: r for r in runs if r.workload == w and r.allocator == a and r.probe and r.ok}
            pairs = [(probed[r.index], r) for r in runs if r.workload == w and r.allocator == a
                     and r.probe is False and r.ok and r.index in probed]
            if not pairs:
                continue
            ratio = lambda key: median([_div(p.metrics()[key], q.metrics()[key]) for p, q in pairs])  # noqa: E731
            out.setdefault(w, {})[a] = {
                "wall_ratio": ratio("wall_s"),
                "cpu_ratio": ratio("cpu_s"),
                "peak_rss_ratio": ratio("peak_rss"),
                "probe_table_bytes": median([p.probe_bytes for p, _ in pairs]),
                "pairs": len(pairs),
            }
    return out


def _div(a, b):
    return a / b if a is not None and b else None


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def ratios(summary, allocators, baseline=BASELINE):
    """{allocator: {metric: geometric mean over workloads of (value / baseline's value)}}."""
    out = {}
    for a in allocators:
        out[a] = {}
        for key, _, _ in METRICS:
            vals = []
            for w, per in summary.items():
                base, mine = per.get(baseline, {}), per.get(a, {})
                if base.get("ok") and mine.get("ok"):
                    vals.append(_div(mine.get(key), base.get(key)))
            out[a][key] = geomean(vals)
    return out


# -- terminal table ---------------------------------------------------------------------------------
def _fmt(value, kind):
    if value is None:
        return "-"
    if kind == "s":
        return f"{value:.2f}"
    if kind == "b":
        return f"{value / MiB:.1f}"
    if kind == "n":
        return f"{value / 1000:.0f}k" if value >= 10000 else f"{value:.0f}"
    return f"{value:.2f}"


def table(summary, allocators, baseline=BASELINE, probe=True):
    """The text table: one block per workload, allocator rows, metric columns as 'value (ratio)'."""
    metrics = [m for m in METRICS if probe or not m[0].startswith("frag")]
    lines = []
    for w, per in summary.items():
        base = per.get(baseline) if per.get(baseline, {}).get("ok") else None
        head = ["workload " + w] + [t for _, t, _ in metrics]
        rows = []
        for a in allocators:
            e = per[a]
            if not e["ok"]:
                err = e["errors"][0]["error"] if e["errors"] else "no run"
                rows.append([a, f"FAILED: {err}"])
                continue
            row = [a]
            for key, _, kind in metrics:
                cell = _fmt(e.get(key), kind)
                if base is not None and a != baseline and e.get(key) is not None and base.get(key):
                    cell += f" ({e[key] / base[key]:.2f}x)"
                row.append(cell)
            rows.append(row)
        lines += _grid(head, rows) + [""]
    return "\n".join(lines)


def ratio_table(rat, allocators, baseline=BASELINE, probe=True):
    metrics = [m for m in METRICS if probe or not m[0].startswith("frag")]
    head = [f"geomean vs {baseline}"] + [t.replace(" MiB", "") for _, t, _ in metrics]
    rows = [[a] + [_fmt(rat[a][k], "x") + ("x" if rat[a][k] is not None else "") for k, _, _ in metrics]
            for a in allocators]
    return "\n".join(_grid(head, rows))


def overhead_table(ovh):
    head = ["probe overhead", "wall", "cpu", "peak RSS", "table MiB"]
    rows = []
    for w, per in ovh.items():
        for a, o in per.items():
            rows.append([f"{w}/{a}"] + [_pct(o[k]) for k in ("wall_ratio", "cpu_ratio", "peak_rss_ratio")]
                        + [_fmt(o["probe_table_bytes"], "b")])
    return "\n".join(_grid(head, rows)) if rows else ""


def _pct(r):
    return "-" if r is None else f"{(r - 1) * 100:+.1f}%"


def _grid(head, rows):
    width = max([len(head)] + [len(r) for r in rows])
    cols = [max(len(str(r[i])) for r in [head] + rows if i < len(r)) for i in range(width)]
    fmt = lambda r: "  ".join(str(c).ljust(cols[i]) if i == 0 else str(c).rjust(cols[i])  # noqa: E731
                              for i, c in enumerate(r)).rstrip()
    return [fmt(head), "-" * len(fmt(head))] + [fmt(r) for r in rows]


# -- files --------------------------------------------------------------------------------------------
RUN_FIELDS = ["workload", "allocator", "run", "probe", "status", "error", "wall_s", "cpu_s", "peak_rss",
              "avg_rss", "final_rss", "faults", "peak_live", "avg_live", "final_live", "frag_avg",
              "frag_peak", "frag_end", "probe_table_bytes", "samples"]


def write_runs_csv(path, runs):
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(RUN_FIELDS)
        for r in runs:
            m = r.metrics()
            row = {"workload": r.workload, "allocator": r.allocator, "run": r.index, "probe": int(bool(r.probe)),
                   "status": r.status, "error": r.error or "", "probe_table_bytes": r.probe_bytes, **m}
            wr.writerow([_csv(row.get(k)) for k in RUN_FIELDS])


def write_summary_csv(path, summary):
    keys = [k for k, _, _ in METRICS] + ["peak_live", "avg_live", "final_live", "frag_peak"]
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "allocator", "ok", "runs"] + keys + [k + "_vs_glibc" for k in keys])
        for w, per in summary.items():
            base = per.get(BASELINE, {})
            for a, e in per.items():
                rel = [_div(e.get(k), base.get(k)) if base.get("ok") and e["ok"] else None for k in keys]
                wr.writerow([w, a, int(e["ok"]), e["runs"]] + [_csv(e.get(k)) for k in keys] + [_csv(v) for v in rel])


def write_samples_csv(path, runs):
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "allocator", "run", "probe", "t_s", "rss", "live"])
        for r in runs:
            for t, rss, live in r.samples:
                wr.writerow([r.workload, r.allocator, r.index, int(bool(r.probe)), f"{t:.4f}", rss,
                             "" if live is None else live])


def _csv(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def to_json(summary, rat, ovh, runs, meta):
    return json.dumps({"meta": meta, "summary": summary, "geomean_vs_glibc": rat, "probe_overhead": ovh,
                       "runs": [{"workload": r.workload, "allocator": r.allocator, "run": r.index,
                                 "probe": bool(r.probe), "status": r.status, "error": r.error,
                                 "stderr_tail": r.stderr_tail if not r.ok else "",
                                 "probe_table_bytes": r.probe_bytes, **r.metrics()} for r in runs]},
                      indent=1)
