"""`prmkit report --run-dir DIR`: one HTML page for reward-model evaluations found under DIR.

It reads what `prmkit eval processbench` (processbench.json + scored.jsonl) and `prmkit eval bon`
(bon.json) wrote, anywhere below DIR, and draws: Best-of-N curves, step-score histograms by gold
label, a calibration (reliability) diagram, the confusion of predicted vs gold first-error
positions, and the metric tables. PNGs are also written to DIR/plots/ (the demo embeds them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prmkit.errors import InputError


@dataclass
class ReportConfig:
    """Write an HTML report of the reward-model evaluations found under a run directory."""

    run_dir: str = "runs/eval"
    """directory searched (recursively) for processbench.json / scored.jsonl / bon.json"""
    out: str = ""
    """HTML file to write (empty: RUN_DIR/report.html)"""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bon(bon: dict, title: str):
    """Majority vote, pass@N, and for each model its own aggregation: argmax (solid) and weighted vote (dashed).
    The other aggregations are in the table below the plot."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ns = [int(n) for n in bon["ns"]]
    ax.plot(ns, [_get(bon["majority"], n) for n in ns], "k--o", label="majority vote")
    ax.plot(ns, [_get(bon["pass_at_k"], n) for n in ns], ":", color="gray", label="pass@N (oracle)")
    for i, (name, m) in enumerate(bon["models"].items()):
        own, color = m["aggregation"], f"C{i}"
        ax.plot(ns, [_get(m["curves"][own]["argmax"], n) for n in ns], "-o", color=color, lw=2,
                label=f"{name} argmax ({own})")
        ax.plot(ns, [_get(m["curves"][own]["weighted"], n) for n in ns], "--", color=color, lw=1,
                label=f"{name} weighted vote ({own})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _get(d: dict, n: int):
    return d[str(n)] if str(n) in d else d[n]


def _labelled(traces) -> tuple[list[float], list[int]]:
    from prmkit.evaluate.processbench import gold_step_labels

    probs, labels = [], []
    for t in traces:
        s = t.meta["rm"]["step_scores"]
        for k, y in gold_step_labels(t.first_error, len(s)):
            probs.append(s[k])
            labels.append(y)
    return probs, labels


def plot_histograms(traces, title: str):
    plt = _plt()
    probs, labels = _labelled(traces)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bins = [i / 20 for i in range(21)]
    ax.hist([p for p, y in zip(probs, labels) if y == 1], bins=bins, alpha=0.6, label="gold: step right", color="#4f81bd")
    ax.hist([p for p, y in zip(probs, labels) if y == 0], bins=bins, alpha=0.6, label="gold: first wrong step", color="#c0504d")
    ax.set_xlabel("step score")
    ax.set_ylabel("steps")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    return fig


def plot_calibration(traces, title: str, n_bins: int = 10):
    plt = _plt()
    probs, labels = _labelled(traces)
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    xs, ys, sizes = [], [], []
    for b in range(n_bins):
        idx = [i for i, p in enumerate(probs) if min(int(p * n_bins), n_bins - 1) == b]
        if idx:
            xs.append(sum(probs[i] for i in idx) / len(idx))
            ys.append(sum(labels[i] for i in idx) / len(idx))
            sizes.append(len(idx))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.scatter(xs, ys, s=[10 + 200 * s / max(sizes) for s in sizes], color="#4f81bd")
    ax.plot(xs, ys, color="#4f81bd")
    ax.set_xlabel("mean step score in bin")
    ax.set_ylabel("share of right steps")
    ax.set_title(title)
    return fig


def plot_confusion(traces, threshold: float, title: str):
    from prmkit.evaluate.metrics import predicted_first_error

    plt = _plt()
    gold = [t.first_error for t in traces]
    pred = [predicted_first_error(t.meta["rm"]["step_scores"], threshold) for t in traces]
    top = max(max(gold), max(pred), 0)
    size = top + 2                                        # row/col 0 = "-1" (no error)
    m = [[0] * size for _ in range(size)]
    for g, p in zip(gold, pred):
        m[g + 1][p + 1] += 1
    fig, ax = plt.subplots(figsize=(5, 4.4))
    ax.imshow([[v ** 0.5 for v in row] for row in m], cmap="Blues")
    for i in range(size):
        for j in range(size):
            if m[i][j]:
                ax.text(j, i, str(m[i][j]), ha="center", va="center", fontsize=7)
    ticks = list(range(size))
    ax.set_xticks(ticks, ["none"] + [str(k) for k in range(top + 1)], fontsize=7)
    ax.set_yticks(ticks, ["none"] + [str(k) for k in range(top + 1)], fontsize=7)
    ax.set_xlabel("predicted first error")
    ax.set_ylabel("gold first error")
    ax.set_title(title)
    return fig


def _save(fig, path: Path) -> str:
    from prmkit.report import figure_to_img

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    img = figure_to_img(fig)
    _plt().close(fig)
    return img


def _flat_rows(d: dict) -> list[tuple]:
    return [(k, v) for k, v in d.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]


def build_sections(run_dir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(title, html) sections and the PNG paths written, for every evaluation under run_dir."""
    from prmkit.report import table_html
    from prmkit.schema import read_traces

    sections, plots = [], []
    plot_dir = run_dir / "plots"
    for pb in sorted(run_dir.rglob("processbench.json")):
        res = json.loads(pb.read_text())
        tag = pb.parent.name
        html = table_html(_flat_rows(res), ("metric", "value"))
        scored = pb.parent / "scored.jsonl"
        if scored.exists():
            traces = read_traces(scored)
            for name, fig in (("hist", plot_histograms(traces, f"{tag}: step scores by gold label")),
                              ("calibration", plot_calibration(traces, f"{tag}: calibration")),
                              ("confusion", plot_confusion(traces, res["threshold"], f"{tag}: first-error positions"))):
                path = plot_dir / f"{tag}_{name}.png"
                html += _save(fig, path)
                plots.append(str(path))
        sections.append((f"ProcessBench protocol — {tag}", html))
    for bf in sorted(run_dir.rglob("bon.json")):
        bon = json.loads(bf.read_text())
        tag = bf.parent.name
        n = bon["n"]
        rows = [("majority vote", "", _get(bon["majority"], n)), ("pass@N", "", _get(bon["pass_at_k"], n))]
        if "cot_pass_at_k" in bon:
            rows.append(("CoT-pass@N", "", _get(bon["cot_pass_at_k"], n)))
        diag_rows = []
        for name, m in bon["models"].items():
            for how, curves in m["curves"].items():
                rows.append((name, f"argmax ({how})", _get(curves["argmax"], n)))
                rows.append((name, f"weighted ({how})", _get(curves["weighted"], n)))
            diag_rows += [(name, k, v) for k, v in _flat_rows(m) if k not in ("kind", "aggregation")]
            for probe, r in m.get("attack_probes", {}).items():
                if isinstance(r, dict):
                    diag_rows += [(name, f"probe {probe}: {k}", v) for k, v in r.items()]
        path = plot_dir / f"{tag}_bon.png"
        html = _save(plot_bon(bon, f"{tag}: Best-of-N ({bon['problems']} problems)"), path)
        plots.append(str(path))
        html += table_html(rows, ("selector", "rule", f"accuracy at N={n}"))
        html += table_html(diag_rows, ("model", "diagnostic", "value"))
        sections.append((f"Best-of-N — {tag}", html))
    return sections, plots


def run(cfg: ReportConfig) -> Path:
    from prmkit.report import write_page

    run_dir = Path(cfg.run_dir)
    if not run_dir.is_dir():
        raise InputError("expected a run directory", file=str(run_dir), field="run_dir")
    sections, _ = build_sections(run_dir)
    if not sections:
        raise InputError("found no processbench.json or bon.json below this directory", file=str(run_dir),
                         field="run_dir")
    out = Path(cfg.out) if cfg.out else run_dir / "report.html"
    write_page(out, f"prmkit reward-model report — {run_dir}", sections)
    print(f"report: {out}")
    return out
