"""The PNG chart of scripts/bench: wall time and peak RSS of every workload as ratios to glibc, one bar
per allocator, log scale, geometric means last. Needs Debian's python3-matplotlib (Agg backend)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"glibc": "#888888", "kmalloc": "#d62728", "mimalloc": "#1f77b4", "jemalloc": "#2ca02c",
          "tcmalloc": "#9467bd"}

def draw(path, workloads, allocs, med_t, med_r, geo_t, geo_r, runs):
    labels = workloads + ["geomean"]
    fig, axes = plt.subplots(2, 1, figsize=(max(10, 1.1 * len(labels) * len(allocs) / 3), 9), sharex=True)
    width = 0.8 / len(allocs)
    for ax, med, geo, title in ((axes[0], med_t, geo_t, "wall time"), (axes[1], med_r, geo_r, "peak RSS")):
        shown = []
        for i, al in enumerate(allocs):
            vals = []
            for w in workloads:
                v, base = med.get((w, al), float("nan")), med.get((w, "glibc"), float("nan"))
                vals.append(v / base if v == v and base == base and base > 0 else float("nan"))
            vals.append(geo[al][0] if al in geo else float("nan"))
            shown += [v for v in vals if v == v]
            xs = [j + (i - (len(allocs) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, [v if v == v else 0 for v in vals], width, label=al, color=COLORS.get(al))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("%s / glibc (lower is better)" % title)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.set_ylim(bottom=max(min([v for v in shown if v > 0] + [1.0]) / 1.5, 0.01))
    axes[1].set_xticks(range(len(labels)))
    axes[1].set_xticklabels(labels, rotation=30, ha="right")
    axes[0].legend(ncol=len(allocs), loc="upper left", fontsize="small")
    axes[0].set_title("kmalloc benchmark suite: medians of %d run(s), ratio to glibc" % runs)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
