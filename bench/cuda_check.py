"""CUDA path check (run on a GPU machine; never part of the test suite).

Every stage that loads a model is run once on the GPU and, where the numbers should agree, against
the CPU on the same inputs:

  sampler   K=8 continuations sampled on the GPU: reported logprobs vs teacher forcing on the GPU;
            greedy decoding on the GPU vs the CPU (token-identical rows);
  scoring   the shipped PRM's step scores on the GPU vs the CPU (max |diff|, same traces);
  train     `prmkit train prm|orm|implicit` for a few optimizer steps on each device from the same
            data and seed: per-step losses side by side (max relative diff);
  rl        2 steps of each RL method (`prmkit rl --device cuda`): runs, finite metrics, seconds/step;
  search    beam and early rejection on the GPU (sampler + PRM): runs, accuracy, tokens.

Each section records its result or its error (a failing section does not hide the others).
Writes bench/results/cuda_check.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
import traceback
from pathlib import Path

import torch

os.environ.setdefault("PRMKIT_QUIET", "1")
GPU = "cuda"  # --gpu cpu: a dry run of the script itself on a machine without a GPU


def check_sampler() -> dict:
    from prmkit.gym.task import make_split, parse_prompt
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy

    gpu = HFSampler.from_pretrained(default_policy(), device=GPU)
    cpu = HFSampler.from_pretrained(default_policy(), device="cpu")
    problems = make_split("long", 16)
    prefixes = [p.prompt + "\n".join(parse_prompt(p.prompt).solution_steps()[:2]) + "\n" for p in problems]
    groups = gpu.sample(prefixes, SamplingParams(n=8, max_new_tokens=96, seed=0))
    worst = 0.0
    for prefix, group in zip(prefixes, groups):
        ids = gpu.encode_prompt(prefix)
        for c in group:
            full = torch.tensor([ids + c.token_ids], device=GPU)
            with torch.no_grad():
                lp = torch.log_softmax(gpu.model(full).logits[0, :-1].float(), -1)
            tf = lp[torch.arange(full.size(1) - 1), full[0, 1:]][len(ids) - 1:].cpu()
            worst = max(worst, float((tf - torch.tensor(c.logprobs)).abs().max()))
    greedy = SamplingParams(n=1, max_new_tokens=120, temperature=0)
    prompts = [p.prompt for p in make_split("test", 64)]
    same = sum(a[0].token_ids == b[0].token_ids for a, b in zip(gpu.sample(prompts, greedy), cpu.sample(prompts, greedy)))
    return {"max_abs_logprob_diff_vs_teacher_forcing": worst, "greedy_same_as_cpu": f"{same}/{len(prompts)}"}


def _traces(split: str, problems: int, samples: int, seed: int):
    from prmkit.gym.task import make_split
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.sample import make_sampler, sample_traces
    from prmkit.resolve import default_policy

    params = SamplingParams(n=samples, max_new_tokens=160, temperature=1.0, seed=seed)
    return sample_traces(make_sampler(default_policy(), device="cpu"), make_split(split, problems), params, desc=f"sample {split}")


def check_scoring() -> dict:
    from prmkit.rewards import default_gym_prm

    traces = _traces("test", 64, 4, 0)
    prompts, steps = [t.prompt for t in traces], [t.steps for t in traces]
    a = default_gym_prm(device="cpu").score(prompts, steps)
    b = default_gym_prm(device=GPU).score(prompts, steps)
    diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    return {"traces": len(traces), "steps": sum(map(len, steps)), "max_abs_step_score_diff": diff}


def _gold_labelled(traces):
    from prmkit.schema import StepLabels

    out = []
    for t in traces:
        fe = t.first_error if t.first_error is not None else -1
        values = [1.0 if (fe < 0 or i < fe) else 0.0 for i in range(len(t.steps))]
        t.labels = StepLabels(values=values, method="gold")
        out.append(t)
    return out


def _losses(out: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (out / "train_log.jsonl").read_text().splitlines() if x.strip()]


def check_train(work: Path) -> dict:
    from prmkit.schema import write_records
    from prmkit.train import implicit, orm, prm

    data = work / "train.jsonl"
    write_records(data, _gold_labelled(_traces("train", 24, 4, 0)))
    fit = work / "fit.jsonl"
    write_records(fit, _traces("dev", 16, 2, 7))
    res: dict = {}
    for name, mod, cfg_cls in (("prm", prm, prm.TrainPRMConfig), ("orm", orm, orm.TrainORMConfig),
                               ("implicit", implicit, implicit.TrainImplicitConfig)):
        losses, secs = {}, {}
        for i, dev in enumerate(("cpu", GPU)):
            out = work / f"{name}_{i}_{dev}"
            t = time.perf_counter()
            mod.run(cfg_cls(out=str(out), data=str(data), fit_data=str(fit), epochs=1.0, batch_size=16,
                            device=dev, seed=0, threads=0))
            secs[f"{i}_{dev}"] = round(time.perf_counter() - t, 1)
            losses[i] = _losses(out)
        rel = max(abs(x - y) / max(abs(x), 1e-6) for x, y in zip(losses[0], losses[1]))
        res[name] = {"optimizer_steps": len(losses[1]), "max_rel_loss_diff": rel,
                     "first_losses": {"cpu": losses[0][:3], GPU: losses[1][:3]}, "seconds": secs}
    return res


def check_rl(work: Path) -> dict:
    from prmkit.rl.config import RLConfig
    from prmkit.rl.trainer import RLRun

    res = {}
    for method in ("grpo", "prime", "pure", "pav"):
        cfg = RLConfig(out=str(work / f"rl_{method}"), reward=method, steps=2, prompts_per_step=8, k=4,
                       eval_every=0, eval_problems=32, device=GPU, tensorboard=False, save_policy=False, threads=0)
        t = time.perf_counter()
        recs = RLRun(cfg).train()
        last = recs[-1]
        finite = all(math.isfinite(v) for v in last.values() if isinstance(v, float))
        res[method] = {"steps": last["step"], "finite": finite, "loss": last.get("loss"),
                       "eval_accuracy": last.get("eval/accuracy"), "seconds": round(time.perf_counter() - t, 1),
                       "step_s": last.get("time/step_s")}
    return res


def check_search(work: Path) -> dict:
    from prmkit.search.run import SearchConfig, run

    res = {}
    for method in ("beam", "early_reject"):
        out = work / f"search_{method}.jsonl"
        t = time.perf_counter()
        summary = run(SearchConfig(out=str(out), method=method, split="long", num_problems=32, n=4, device=GPU))
        res[method] = {"summary": summary if isinstance(summary, dict) else str(summary),
                       "seconds": round(time.perf_counter() - t, 1)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/cuda_check.json")
    ap.add_argument("--sections", default="sampler,scoring,train,rl,search")
    ap.add_argument("--gpu", default="cuda", help="device under test (cpu: dry run of this script)")
    args = ap.parse_args()
    global GPU
    GPU = args.gpu
    from prmkit.schema import atomic_write_text

    result: dict = {"device": torch.cuda.get_device_name(0) if GPU.startswith("cuda") else GPU,
                    "torch": torch.__version__}
    try:
        import transformers

        result["transformers"] = transformers.__version__
    except ImportError:
        pass
    work = Path(tempfile.mkdtemp(prefix="prmkit_cuda_"))
    fns = {"sampler": check_sampler, "scoring": check_scoring, "train": lambda: check_train(work),
           "rl": lambda: check_rl(work), "search": lambda: check_search(work)}
    for name in args.sections.split(","):
        t = time.perf_counter()
        try:
            result[name] = fns[name]()
        except Exception as e:  # record and go on: one broken section must not hide the others
            result[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        result.setdefault("seconds", {})[name] = round(time.perf_counter() - t, 1)
        print(name, json.dumps(result[name])[:600], flush=True)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
