"""Build the stronger gym verifier used by the search bench's verifier-strength run (issue 5, item 5).

    .venv/bin/python bench/strong_verifier.py            # ~25 min on 2 CPU cores; each stage resumes

Why: the shipped gym PRM is built on the gym policy itself. Inside an MCTS answer pool it ranks a
correct solution above a wrong one of the same problem with probability ~0.64 (long_dev), and a PRM
trained on the same backbone with 40x more, exact, tool-verified labels does no better (README, notes on
search): a verifier that reads with the policy's weights cannot
check arithmetic the policy gets wrong. Search-and-learn's setting is a weak policy and a stronger
verifier (a 1B policy with an 8B PRM). This script builds that setting on the gym, with nothing chosen
on the long split:

1. a gym LM of the policy's size trained 3,000 steps instead of 725 (`prmkit gym train-policy`);
2. 32,000 policy samples on train-split problems (4,000 problems x 4 at temperature 1.0, seed 101;
   the next 4,000 x 4 at temperature 0.5, seed 202), labelled by the gym's exact step checker
   (`prmkit label --method verify`, a tool label: no rollouts, no humans);
3. a PRM on that backbone (`prmkit train prm`, one epoch, lr 3e-4, the recipe of the shipped PRM: its
   head adds the step's log-likelihood under the frozen LM of step 1), copied to
   bench/models/strong_verifier/ with that LM in its `loglik_lm/` folder, so the directory is whole.
   (Without the likelihood feature the same head reaches a dev F1 of only 0.50 after one epoch.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "models" / "strong_verifier"


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "prmkit", *args], check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "strong-verifier"))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    lm = work / "lm"
    if not (lm / "model.safetensors").exists() or not (lm / "train_config.json").exists():
        cli("gym", "train-policy", "--out", str(lm), "--steps", "3000", "--threads", "2")
    from prmkit.label.checked_samples import checked_traces

    data = checked_traces(work)   # the samples and labels of step 2
    prm = work / "prm"
    if not (prm / "prmkit_rm.json").exists():
        cli("train", "prm", "--data", str(data), "--model", str(lm), "--out", str(prm),
            "--lr", "3e-4", "--epochs", "1", "--batch-size", "32", "--threads", "2")
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in prm.iterdir():
        if f.is_file() and f.name not in ("train_state.pt",):
            shutil.copy2(f, tmp / f.name)
    shutil.copytree(lm, tmp / "loglik_lm", ignore=shutil.ignore_patterns("train_state*", "tb"))
    cfg = json.loads((tmp / "prmkit_rm.json").read_text())
    cfg["loglik"]["lm"] = "loglik_lm"  # resolved against the model dir when loaded
    (tmp / "prmkit_rm.json").write_text(json.dumps(cfg, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"strong verifier saved to {out}")


if __name__ == "__main__":
    main()
