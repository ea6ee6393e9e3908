"""Plots of a comparison: RSS and live bytes over time per workload, and a bar chart of the summary."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MiB = 1024 * 1024


def _colors(allocators):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {a: cycle[i % len(cycle)] for i, a in enumerate(allocators)}


def timelines(path_base, runs, workload, allocators):
    """RSS (and live bytes, when the probe ran) over time, one line per allocator (its first run).
    Writes path_base.png and path_base.svg; returns the paths."""
    first = {}
    for r in runs:
        if r.workload == workload and r.ok and r.probe is not False and r.allocator not in first:
            first[r.allocator] = r
    if not first:
        return []
    has_live = any(s[2] is not None for r in first.values() for s in r.samples)
    colors = _colors(allocators)
    fig, axes = plt.subplots(2 if has_live else 1, 1, figsize=(10, 7 if has_live else 4), sharex=True,
                             squeeze=False)
    ax_rss = axes[0][0]
    for a in allocators:
        r = first.get(a)
        if not r or not r.samples:
            continue
        t = [s[0] for s in r.samples]
        ax_rss.plot(t, [s[1] / MiB for s in r.samples], label=a, color=colors[a], linewidth=1.2)
        if has_live:
            live = [(s[0], s[2] / MiB) for s in r.samples if s[2] is not None]
            axes[1][0].plot([x for x, _ in live], [y for _, y in live], label=a, color=colors[a], linewidth=1.2)
    ax_rss.set_title(f"{workload}: resident memory (RSS of the process tree, probe table excluded)")
    ax_rss.set_ylabel("RSS (MiB)")
    ax_rss.grid(alpha=0.3)
    ax_rss.legend(loc="upper left", fontsize="small")
    if has_live:
        axes[1][0].set_title("live bytes (requested and not yet freed, counted by the probe)")
        axes[1][0].set_ylabel("live (MiB)")
        axes[1][0].grid(alpha=0.3)
    axes[-1][0].set_xlabel("time (s)")
    return _save(fig, path_base)


def _save(fig, path_base):
    """Write the figure as PNG and SVG and close it; returns the two paths."""
    fig.tight_layout()
    paths = [path_base + ".png", path_base + ".svg"]
    for p in paths:
        fig.savefig(p, dpi=110)
    plt.close(fig)
    return paths


def summary_bars(path_base, summary, allocators, probe=True):
    """Grouped bars per workload: peak RSS, average RSS, end RSS, wall time (and fragmentation)."""
    panels = [("peak_rss", "peak RSS (MiB)", MiB), ("avg_rss", "time-averaged RSS (MiB)", MiB),
              ("final_rss", "RSS at the end (MiB)", MiB), ("wall_s", "wall time (s)", 1)]
    if probe:
        panels.append(("frag_avg", "fragmentation: avg RSS / avg live", 1))
    workloads = list(summary)
    colors = _colors(allocators)
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 2.2 * len(workloads) + 3), 2.6 * len(panels)),
                             squeeze=False)
    width = 0.8 / max(1, len(allocators))
    for (key, title, unit), ax in zip(panels, [a[0] for a in axes]):
        for i, a in enumerate(allocators):
            xs, ys = [], []
            for j, w in enumerate(workloads):
                e = summary[w].get(a, {})
                if e.get("ok") and e.get(key) is not None:
                    xs.append(j + (i - (len(allocators) - 1) / 2) * width)
                    ys.append(e[key] / unit)
            ax.bar(xs, ys, width=width, label=a, color=colors[a])
        ax.set_title(title, fontsize="medium")
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(ncol=len(allocators), fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.12))
    return _save(fig, path_base)


def all_plots(out_dir, runs, summary, allocators, probe=True):
    paths = []
    for w in summary:
        paths += timelines(os.path.join(out_dir, f"timeline-{w}"), runs, w, allocators)
    paths += summary_bars(os.path.join(out_dir, "summary"), summary, allocators, probe)
    return paths
