"""`prmkit demo`'s report: one HTML page (plots and tables of every stage) and the results table
printed at the end."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prmkit.demo.stages import STAGES
from prmkit.report import figure_to_img, png_to_img, table_html, write_page


def _accuracy_by_ops(trace_file: Path) -> dict[int, float]:
    """Mean outcome of gym traces by the number of operations in their prompt."""
    totals: dict[int, list[float]] = {}
    for line in trace_file.read_text().splitlines():
        t = json.loads(line)
        n = len(t["prompt"].split(",")) - 1
        totals.setdefault(n, []).append(t["outcome"] or 0.0)
    return {n: sum(v) / len(v) for n, v in sorted(totals.items())}


def _gym_plots(out: Path, results: dict) -> list[tuple[str, str]]:
    """Where the shipped policy first goes wrong, and its accuracy by chain length (two sections)."""
    import matplotlib  # (the backend is chosen before pyplot loads)

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
    return sections


def _stage_section(out: Path, key: str, stage: dict) -> str:
    """A later stage's flat numbers as a table, then the PNGs it named (under "plots" or as *.png values)."""
    rows = [(k, v) for k, v in stage.items() if k != "plots" and not isinstance(v, (dict, list))]
    pngs = list(stage.get("plots", [])) + [v for v in stage.values() if isinstance(v, str) and v.endswith(".png")]
    plots = "".join(png_to_img(p if Path(p).is_absolute() or Path(p).exists() else out / key / p)
                    for p in pngs if Path(p).exists() or (out / key / p).exists())
    return table_html(rows, ("metric", "value")) + plots


def write_demo_report(out: Path, results: dict) -> Path:
    """`out/report.html`: the gym plots and statistics, sampling, GSM8K and every later stage run."""
    sections = _gym_plots(out, results)
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
    for key, (title, _target) in STAGES.items():
        if key in results:
            sections.append((title, _stage_section(out, key, results[key])))
    sections.append(("Stage times (s)", table_html(list(results["timings_s"].items()), ("stage", "seconds"))))
    return write_page(out / "report.html", "prmkit demo report", sections)


def print_table(results: dict) -> None:
    """The headline numbers of every stage in `results` as one table on stdout."""
    t = Table(title="prmkit demo — gym results")
    t.add_column("stage")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for split in ("gym_test", "gym_long"):
        s = results[split]
        t.add_row(split, "sampled accuracy (T=1)", f"{s['sampled_accuracy']:.3f}")
        t.add_row(split, "well-formed", f"{s['well_formed']:.3f}")
        t.add_row(split, "right answer, wrong step", str(s["right_answer_wrong_step"]))
        t.add_row(split, "largest first-error share", f"{s['max_first_error_share']:.3f}")
    for k, v in results["sampling"].items():
        if isinstance(v, float):
            t.add_row("sample", k, f"{v:.3f}")
    for k, v in results.get("gsm8k", {}).items():
        t.add_row("gsm8k", k, str(v))
    for key, (title, _target) in STAGES.items():
        for k, v in results.get(key, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                t.add_row(key, k, f"{v:.3f}" if isinstance(v, float) else str(v))
    t.add_row("time", "total seconds", str(results["timings_s"]["total"]))
    Console().print(t)
