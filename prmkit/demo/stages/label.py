"""The labeling stage of `prmkit demo`: sample gym traces with the shipped
policy, label them with mc (hard), omega and verify through `prmkit label`, and compare them with
gold in a label report (table + plot).  Budget: about a minute on 2 CPU cores."""

from __future__ import annotations

import pathlib
import time

from prmkit.gym.task import make_split
from prmkit.label.report import report
from prmkit.label.run import LabelConfig, run
from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler
from prmkit.policy.sample import sample_traces
from prmkit.resolve import default_policy
from prmkit.schema import write_records


def demo_stage(out_dir: pathlib.Path, seed: int, num_problems: int = 25, samples: int = 4, k: int = 4) -> dict:
    """Run the stage under `out_dir/label/` and return flat headline numbers plus the plot path."""
    t0 = time.perf_counter()
    base = pathlib.Path(out_dir) / "label"
    sampler = HFSampler.from_pretrained(default_policy())
    traces = sample_traces(sampler, make_split("test", num_problems),
                           SamplingParams(n=samples, max_new_tokens=96, seed=seed), desc="label demo: sample")
    traces_file = base / "traces.jsonl"
    write_records(traces_file, traces)
    dirs = []
    for method in ("mc", "omega", "verify"):
        d = base / method
        run(LabelConfig(method=method, traces=str(traces_file), out=str(d), k=k, seed=seed))
        dirs.append(str(d))
    result = report(dirs, ["mc_hard", "omega", "verify"], base / "report")
    m = result["methods"]
    out = {"label_traces": len(traces), "label_k": k}
    for name in ("mc_hard", "omega", "verify"):
        out[f"label_{name}_first_error_agreement"] = round(m[name]["first_error_agreement"], 4)
        out[f"label_{name}_rollouts_per_trace"] = round(m[name]["rollouts_per_trace"], 2)
        out[f"label_{name}_policy_tokens_per_trace"] = round(m[name]["policy_tokens_per_trace"], 1)
    out["label_omega_vs_mc_rollout_ratio"] = round(
        m["omega"]["rollouts_per_trace"] / max(1e-9, m["mc_hard"]["rollouts_per_trace"]), 4)
    out["label_seconds"] = round(time.perf_counter() - t0, 1)
    out["label_plot"] = str(base / "report" / "label_report.png")
    out["label_report_html"] = str(base / "report" / "label_report.html")
    return out
