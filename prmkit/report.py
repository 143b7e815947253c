"""HTML reports: plots (matplotlib, embedded as PNG) and tables in one self-contained page."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path


def figure_to_img(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def png_to_img(path: str | Path) -> str:
    data = Path(path).read_bytes()
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def table_html(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def write_page(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    from prmkit.schema import atomic_write_text

    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}")
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    atomic_write_text(path, f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
    return path


def _accuracy_by_ops(trace_file: Path) -> dict[int, float]:
    totals: dict[int, list[float]] = {}
    for line in trace_file.read_text().splitlines():
        t = json.loads(line)
        n = len(t["prompt"].split(",")) - 1
        totals.setdefault(n, []).append(t["outcome"] or 0.0)
    return {n: sum(v) / len(v) for n, v in sorted(totals.items())}


def write_demo_report(out: Path, results: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, split in zip(axes, ("gym_test", "gym_long")):
        hist = results[split]["first_error_hist"]
        xs = [int(k) for k in hist]
        ax.bar(xs, [hist[k] for k in hist], color="#c0504d")
        ax.set_title(f"{split}: first wrong step (n={results[split]['num_traces']})")
        ax.set_xlabel("step index (0-based)")
        ax.set_ylabel("traces")
    sections.append(("Where the shipped policy first goes wrong", figure_to_img(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for split, d in (("test", "gym_stats_test"), ("long", "gym_stats_long")):
        f = out / d / "traces.jsonl"
        if f.exists():
            acc = _accuracy_by_ops(f)
            ax.plot(list(acc), list(acc.values()), marker="o", label=split)
    ax.set_xlabel("operations in the chain")
    ax.set_ylabel("sampled accuracy (T=1)")
    ax.set_ylim(0, 1)
    ax.legend()
    sections.append(("Accuracy by chain length", figure_to_img(fig)))
    plt.close(fig)

    rows = []
    for split in ("gym_test", "gym_long"):
        s = results[split]
        rows.append((split, s["num_traces"], s["sampled_accuracy"], s["well_formed"], s["all_steps_correct"],
                     s["right_answer_wrong_step"], s["max_first_error_share"]))
    sections.append(("Gym statistics", table_html(rows, ("split", "traces", "accuracy", "well-formed",
                                                          "all steps right", "right answer, wrong step",
                                                          "largest first-error share"))))
    sections.append(("Sampling", table_html(list(results["sampling"].items()), ("metric", "value"))))
    if "gsm8k" in results:
        sections.append(("GSM8K converter and calculator checker",
                         table_html(list(results["gsm8k"].items()), ("metric", "value"))))
    from prmkit.demo import STAGES

    for key, (title, _target) in STAGES.items():
        if key not in results:
            continue
        stage = results[key]
        rows = [(k, v) for k, v in stage.items() if k != "plots" and not isinstance(v, (dict, list))]
        pngs = list(stage.get("plots", [])) + [v for v in stage.values() if isinstance(v, str) and v.endswith(".png")]
        plots = "".join(png_to_img(p if Path(p).is_absolute() or Path(p).exists() else out / key / p)
                        for p in pngs if Path(p).exists() or (out / key / p).exists())
        sections.append((title, table_html(rows, ("metric", "value")) + plots))
    sections.append(("Stage times (s)", table_html(list(results["timings_s"].items()), ("stage", "seconds"))))
    return write_page(out / "report.html", "prmkit demo report", sections)
