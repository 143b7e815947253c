"""`prmkit rl`: one RL run for any HF causal LM with pluggable reward shaping (the run's lifecycle).

Each step: draw prompts, sample K responses per prompt with the foundation's `HFSampler` wrapping
the model being trained, grade outcomes, score steps (frozen reward model, or PRIME's online
implicit PRM), turn rewards into token advantages with the method picked by `--reward`
(`prmkit.rl.methods`), and run PPO-clip updates over minibatches. Held-out accuracy is measured every
`eval_every` steps on a fixed set of problems with fixed sampling seeds; reward-hacking monitors
are logged every step. A checkpoint (policy, optimizer, implicit PRM, monitor state, counters) is
written every `checkpoint_every` steps; a rerun with the same `--out` resumes from it and, since
every random draw is seeded by (seed, step), reproduces the metrics of an uninterrupted run.

Outputs in `--out`: config.json, metrics.jsonl (one record per step; `eval/accuracy` on eval
steps; step 0 = the starting policy), tb/ (TensorBoard), checkpoint/state.pt, policy/ (final model).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import time
import warnings
from pathlib import Path

import torch

from prmkit.errors import InputError
from prmkit.lm import resolve_device
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import completion_to_trace
from prmkit.prompting import note_unused_chat_template
from prmkit.rl import advantages as adv_fns
from prmkit.rl import shaping
from prmkit.rl.config import RLConfig, check_config, filter_on, resume_ignores, reward_model_spec
from prmkit.rl.lifecycle import eval_due, load_state, mean_stats, ppo_updates, records_upto, save_state
from prmkit.rl.losses import kl_k3, masked_mean, ppo_clip_loss
from prmkit.rl.methods import compute_advantages, get_method
from prmkit.rl.monitors import DriftMonitor, step_stats
from prmkit.rl.rollout import RolloutBatch, lay_out, response_logprobs, sample_groups, score_steps, seed_for
from prmkit.schema import atomic_write_text


def load_problems(path: str, split: str, n: int, max_ops: int = 0):
    """Problems from a JSONL file (checked), else `n` of the gym split (at most `max_ops` operations)."""
    from prmkit.gym.task import SPLITS, check_prompts, make_split
    from prmkit.resolve import read_problems

    if path:
        problems = read_problems(path)
        check_prompts(problems, path)
        return problems
    if max_ops:
        lo = min(SPLITS[split]["min_ops"], max_ops) if split in SPLITS else 1
        return make_split(split, n, min_ops=lo, max_ops=max_ops)
    return make_split(split, n)


def _log_signal(rec: dict, step: int, batch: RolloutBatch, rows: torch.Tensor, outcomes: torch.Tensor) -> None:
    """Log the share of groups with zero reward variance; warn (and log) when the step updates nothing."""
    rec["zero_var_group_share"] = adv_fns.zero_variance_group_share(outcomes, batch.groups)
    idle = adv_fns.no_update_reason(batch.advantages, batch.response_mask, rows, rec["zero_var_group_share"])
    if idle is not None:
        msg = f"step {step + 1} updates nothing through the policy gradient: {idle}"
        warnings.warn(msg)
        rec.setdefault("warnings", []).append(msg)


class RLRun:
    """Holds models, optimizer, sampler and state of one run; `train()` runs the loop."""

    def __init__(self, cfg: RLConfig):
        from transformers.utils import logging as hf_logging

        check_config(cfg)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if os.environ.get("PRMKIT_QUIET") == "1":
            hf_logging.disable_progress_bar()
        self.cfg, self.out = cfg, Path(cfg.out)
        self.method = get_method(cfg.reward)
        path, rm_spec = self._read_inputs()  # every input is checked before the first model loads
        self._load_policy(path)
        self._make_optimizer()
        self.implicit = None
        if "implicit_prm" in self.method.needs:
            from prmkit.rl.prime import ImplicitPRM

            self.implicit = ImplicitPRM(self.policy, self.ref, beta=cfg.prime_beta, lr=cfg.prime_lr,
                                        grad_clip=cfg.prime_grad_clip, minibatch=cfg.minibatch,
                                        optimizer=cfg.prime_optimizer, weight_decay=cfg.prime_weight_decay,
                                        passes=cfg.prime_passes, granularity=cfg.prime_granularity,
                                        norm=cfg.prime_norm, loss_scale=cfg.prime_loss_scale)
        self.rm, self.rm_desc = (None, "")
        if rm_spec is not None:
            self.rm, self.rm_desc = rm_spec.load(device=self.device), rm_spec.describe()
        self.monitor = DriftMonitor()
        self.tb = None
        self.step, self.sampled_tokens, self.records = 0, 0, []
        self.filter_on = filter_on(cfg)

    def _read_inputs(self):
        """Training and held-out problems, the policy path and the reward model spec (gym defaults on gym data only)."""
        from prmkit.resolve import policy_path, problems_are_gym

        cfg = self.cfg
        self.train_pool = load_problems(cfg.problems, cfg.split, max(512, cfg.prompts_per_step * cfg.steps),
                                        cfg.gym_max_ops)
        if cfg.problems and not cfg.eval_problems_file and not problems_are_gym(self.train_pool):
            raise InputError("the training problems are not the gym's, so there is no held-out default: pass "
                             "--eval-problems-file (problems JSONL)", field="eval_problems_file")
        self.eval_set = load_problems(cfg.eval_problems_file, cfg.eval_split, cfg.eval_problems)[:cfg.eval_problems]
        gym = problems_are_gym(self.train_pool) and problems_are_gym(self.eval_set)
        path = policy_path(cfg.model, "model", gym)
        return path, reward_model_spec(cfg, gym)

    def _load_policy(self, path) -> None:
        """Tokenizer and prompt format (checked before the weights load), the policy, its frozen reference and
        the sampler."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from prmkit.policy.hf import HFSampler

        cfg = self.cfg
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.prompt_format = cfg.resolve_format(path)  # checked before the weights load; saved with the policy
        self.prompt_format.check(self.tokenizer, where=path)
        note_unused_chat_template(self.prompt_format, self.tokenizer, "the policy")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = resolve_device(cfg.device)
        self.policy = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, cfg.dtype)).to(self.device)
        self.policy.train()
        self.ref = None
        if cfg.kl_coef > 0 or "implicit_prm" in self.method.needs:
            self.ref = copy.deepcopy(self.policy).eval()
            for p in self.ref.parameters():
                p.requires_grad_(False)
        self.sampler = HFSampler(self.policy, self.tokenizer, sep=cfg.sep)
        self.sampler.prompt_format = self.prompt_format  # (the sampler put the policy in eval mode)

    def _make_optimizer(self) -> None:
        """Adam or SGD with --lr on weight matrices and --lr x --lr-1d-mult on 1-D parameters; linear warmup."""
        cfg = self.cfg
        opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
        one_d = [p for p in self.policy.parameters() if p.ndim <= 1]
        multi = [p for p in self.policy.parameters() if p.ndim > 1]
        self.optimizer = opt_cls([{"params": multi, "lr": cfg.lr},
                                  {"params": one_d, "lr": cfg.lr * cfg.lr_1d_mult}], lr=cfg.lr)
        warm = max(0, cfg.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda i: min(1.0, (i + 1) / warm) if warm else 1.0)

    # -------------------------------------------------------------------- checkpoints

    def _state_parts(self) -> dict:
        return {"policy": self.policy, "optimizer": self.optimizer, "scheduler": self.scheduler,
                "monitor": self.monitor, "implicit": self.implicit}

    def save_checkpoint(self) -> None:
        """Policy, optimizer, scheduler, implicit PRM, monitor, counters and every RNG (tensors and plain data)."""
        from prmkit.rundir import rng_state

        save_state(self.out / "checkpoint" / "state.pt", self._state_parts(), step=self.step,
                   sampled_tokens=self.sampled_tokens, rng=rng_state())

    def load_checkpoint(self) -> bool:
        from prmkit.rundir import set_rng_state

        state = load_state(self.out / "checkpoint" / "state.pt", self._state_parts(), map_location=self.device,
                           optional=("implicit",))
        if state is None:
            return False
        set_rng_state(state["rng"])
        self.step, self.sampled_tokens = state["step"], state["sampled_tokens"]
        self.records = records_upto(self.out / "metrics.jsonl", self.step)
        return True

    def _log(self, record: dict) -> None:
        self.records.append(record)
        atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.records))
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step" and math.isfinite(v):
                    self.tb.add_scalar(k, v, record["step"])

    # -------------------------------------------------------------------- rollouts

    def evaluate(self) -> float:
        """Held-out accuracy: one sample per problem at eval_temperature, fixed per-problem seeds."""
        self.policy.eval()
        params = SamplingParams(n=1, max_new_tokens=self.cfg.max_new_tokens,
                                temperature=self.cfg.eval_temperature, seed=self.cfg.eval_seed)
        seeds = [seed_for(self.cfg.eval_seed, i) for i in range(len(self.eval_set))]
        groups = self.sampler.sample([self.sampler.render(p.prompt) for p in self.eval_set], params, seeds=seeds)
        self.policy.train()
        ok = [completion_to_trace(p, g[0], 0).outcome or 0.0 for p, g in zip(self.eval_set, groups)]
        return sum(ok) / max(1, len(ok))

    def sample_groups(self, problems: list, seeds: list[int]) -> list:
        """K training samples per problem, each problem's from its own seed -> [[Completion] * K]."""
        return sample_groups(self.sampler, problems, seeds, self.cfg.k, self.cfg.max_new_tokens, self.cfg.temperature)

    def rollout(self, step: int) -> RolloutBatch:
        """Sample K responses for this step's prompts and lay them out (outcomes, steps, step scores);
        with the accuracy filter in refill mode, prompts are drawn until enough pass (`self.refill_info`)."""
        cfg = self.cfg
        self.refill_info = {}
        if self.filter_on and cfg.acc_filter_mode == "refill":
            from prmkit.rl.filtering import refill_rollout_groups

            problems, groups, self.refill_info = refill_rollout_groups(self, step, seed_for)
        else:
            rng = random.Random(seed_for(cfg.seed, step, 1))
            problems = rng.sample(self.train_pool, min(cfg.prompts_per_step, len(self.train_pool)))
            groups = self.sample_groups(problems, [seed_for(cfg.seed, step, 2, i) for i in range(len(problems))])
        batch = lay_out(problems, groups, self.sampler, self.tokenizer, cfg.sep)
        if self.rm is not None:
            score_steps(batch, self.rm, cfg.process_noise_std, seed_for(cfg.seed, step, 3))
        return batch

    # -------------------------------------------------------------------- one step

    def _score(self, batch: RolloutBatch, step: int, rec: dict) -> torch.Tensor:
        """Rewarded outcomes, loss rows, old / reference logprobs and PRIME's implicit rewards of the batch."""
        cfg = self.cfg
        outcomes = batch.outcomes
        if cfg.outcome_flip > 0:
            gen = torch.Generator().manual_seed(seed_for(cfg.seed, step, 4))
            outcomes = shaping.inject_reward_noise(batch.outcomes, flip_prob=cfg.outcome_flip, generator=gen)
        batch.loss_rows = torch.ones(batch.batch_size, dtype=torch.bool)
        if self.filter_on:
            from prmkit.rl.filtering import accuracy_filter

            batch.loss_rows = accuracy_filter(outcomes, batch.groups, cfg.acc_lower, cfg.acc_upper)
        with torch.no_grad():
            batch.old_logprobs = response_logprobs(self.policy, batch)
            if self.ref is not None:
                batch.ref_logprobs = response_logprobs(self.ref, batch)
        if self.implicit is not None:
            rows = torch.nonzero(batch.loss_rows).flatten()
            labelled = copy.copy(batch)
            labelled.outcomes = outcomes
            rec.update(self.implicit.update(labelled, rows))  # PRIME "update before": then read rewards
            batch.token_rewards = self.implicit.token_rewards(batch, batch.loss_rows)
            rec["process_reward"] = float(masked_mean(batch.token_rewards.sum(-1), batch.loss_rows)) \
                if bool(batch.loss_rows.any()) else 0.0
        if batch.step_scores is not None:
            rec["process_reward"] = float(masked_mean(batch.step_scores, batch.step_mask))
        return outcomes

    def _update(self, batch: RolloutBatch, rows: torch.Tensor, step: int) -> dict[str, list[float]]:
        """PPO-clip (+ k3 KL to the reference) over `rows` for --ppo-epochs passes."""
        cfg = self.cfg

        def loss_fn(mb: torch.Tensor):
            mask = batch.response_mask[mb]
            lp = response_logprobs(self.policy, batch, mb)  # (M,T)
            loss, st = ppo_clip_loss(lp, batch.old_logprobs[mb], batch.advantages[mb], mask, cfg.clip_eps)
            stats = {"clip_frac": st["clip_frac"], "approx_kl": st["approx_kl"]}
            if cfg.kl_coef > 0:
                kl = masked_mean(kl_k3(lp, batch.ref_logprobs[mb]), mask)
                loss = loss + cfg.kl_coef * kl
                stats["kl_ref"] = kl.detach()
            return loss, stats

        gen = torch.Generator().manual_seed(seed_for(cfg.seed, step, 5))
        return ppo_updates(self.policy, self.optimizer, rows, loss_fn, generator=gen, epochs=cfg.ppo_epochs,
                           minibatch=cfg.minibatch, grad_clip=cfg.grad_clip, scheduler=self.scheduler)

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        t0 = time.perf_counter()
        batch = self.rollout(step)
        n_tokens = int(batch.response_mask.sum())  # refill: every sampled token counts, discarded ones too
        self.sampled_tokens += self.refill_info.pop("refill/all_sampled_tokens", n_tokens)
        rec: dict = {"step": step + 1, "sampled_tokens": self.sampled_tokens,
                     "train/accuracy": float(batch.outcomes.mean())}
        rec.update(step_stats(batch.steps, batch.response_mask.sum(-1).tolist()))
        if "refill/warning" in self.refill_info:
            rec.setdefault("warnings", []).append(self.refill_info.pop("refill/warning"))
        rec.update(self.refill_info)
        outcomes = self._score(batch, step, rec)
        batch.advantages = compute_advantages(cfg.reward, batch, cfg, step, outcomes)
        batch.validate()
        if self.implicit is not None:
            from prmkit.rl.prime import process_term_stats

            coef = shaping.anneal(cfg.process_coef, step, max(1, cfg.steps), cfg.process_anneal)
            rec.update(process_term_stats(batch, outcomes, coef, cfg.outcome_coef, cfg.prime_loo))
        rows = torch.nonzero(batch.loss_rows).flatten()
        rec["kept_rows"] = int(len(rows))
        _log_signal(rec, step, batch, rows, outcomes)
        rec.update(mean_stats(self._update(batch, rows, step)))
        rec["adv_abs_mean"] = float(masked_mean(batch.advantages.abs(), batch.response_mask))
        rec["time/step_s"] = round(time.perf_counter() - t0, 3)
        return rec

    def _open_tensorboard(self, resumed: bool) -> None:
        self.tb = None
        if self.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out / "tb"), purge_step=self.step + 1 if resumed else None)
            except ImportError:  # tensorboard not installed: JSONL only
                self.tb = None

    def train(self) -> list[dict]:
        from prmkit.progress import progress
        from prmkit.rundir import check_resume, record_config

        cfg = self.cfg
        check_resume(self.out, cfg, has_work=(self.out / "checkpoint" / "state.pt").exists(),
                     ignore=resume_ignores(cfg))
        self.out.mkdir(parents=True, exist_ok=True)
        record_config(self.out, cfg)
        self.prompt_format.save(self.out)
        resumed = self.load_checkpoint()
        self._open_tensorboard(resumed)
        if not resumed:
            self._log({"step": 0, "sampled_tokens": 0, "eval/accuracy": self.evaluate(),
                       "reward_model": self.rm_desc})
        bar = progress(total=cfg.steps, desc=f"rl {cfg.reward}")
        bar.update(self.step)
        done_now = 0
        while self.step < cfg.steps and not (cfg.stop_after and done_now >= cfg.stop_after):
            rec = self.train_step(self.step)
            self.step += 1
            done_now += 1
            if eval_due(self.step, cfg.steps, cfg.eval_every):
                rec["eval/accuracy"] = self.evaluate()
            for w in self.monitor.update(rec):
                warnings.warn(f"reward-hacking monitor at step {self.step}: {w}")
                rec.setdefault("warnings", []).append(w)
            self._log(rec)
            if cfg.checkpoint_every and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps):
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(acc=f"{rec['train/accuracy']:.2f}", ev=rec.get("eval/accuracy", ""))
        bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.step == cfg.steps and cfg.save_policy:
            self.save_policy()
        return self.records

    def save_policy(self) -> Path:
        final = self.out / "policy"
        tmp = self.out / "policy.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.policy.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        self.prompt_format.save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final


def run(cfg: RLConfig) -> list[dict]:
    records = RLRun(cfg).train()
    evals = [(r["step"], r["eval/accuracy"]) for r in records if "eval/accuracy" in r]
    if evals:
        print(f"{cfg.reward}: held-out accuracy {evals[0][1]:.3f} (step {evals[0][0]}) -> "
              f"{evals[-1][1]:.3f} (step {evals[-1][0]}); metrics in {Path(cfg.out) / 'metrics.jsonl'}")
    return records


def summarize(records: list[dict]) -> dict:
    """Headline numbers of a run's metrics: start/final held-out accuracy, steps, sampled tokens."""
    evals = [r for r in records if "eval/accuracy" in r]
    return {"start_accuracy": evals[0]["eval/accuracy"] if evals else None,
            "final_accuracy": evals[-1]["eval/accuracy"] if evals else None,
            "steps": records[-1]["step"] if records else 0,
            "sampled_tokens": records[-1].get("sampled_tokens", 0) if records else 0}


__all__ = ["RLConfig", "RLRun", "load_problems", "run", "summarize"]
