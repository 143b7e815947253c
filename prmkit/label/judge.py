"""LLM-as-a-judge first-error labels and MC/judge consensus (Lessons of PRMs, arXiv 2501.07301).

A judge names the first wrong step of a trace (0-based index, -1 for "no error") or gives an
unparsed verdict (None).  `LMJudge` prompts any causal LM (local dir or hub id, via `HFSampler`)
or an OpenAI-compatible endpoint (via `OpenAISampler`) and parses its reply with `parse_verdict`;
`RuleJudge` is the gym's exact checker with a configurable error rate, so the consensus filter can
be measured on the gym.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence

from prmkit.errors import InputError
from prmkit.gym.task import first_error, parse_prompt
from prmkit.label import rules
from prmkit.label.rollouts import rollout_seed
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import make_sampler
from prmkit.schema import StepLabels, Trace

JUDGE_TEMPLATE = (
    "The following is a problem and a step-by-step solution.\n\n"
    "Problem:\n{prompt}\n\nSolution:\n{steps}\n\n"
    "Check the steps one by one. Which step is the first incorrect one? Reply with its step number "
    "in \\boxed{{}}, or \\boxed{{-1}} if every step is correct.\nVerdict: "
)

_NONE_RE = re.compile(r"\b(none|no (?:error|mistake|incorrect step)s?|all (?:steps )?(?:are )?correct|"
                      r"every step is correct)\b", re.IGNORECASE)
_PATTERNS = [
    re.compile(r"\\boxed\{\s*(-?\d+)\s*\}"),
    re.compile(r"\b(?:step|paragraph)\s*#?\s*(-?\d+)\b", re.IGNORECASE),
    re.compile(r"^\s*(-?\d+)\s*(?:[.)\]:]|$)"),
]


def parse_verdict(text: str, num_steps: int) -> int | None:
    """The judged first error as a 0-based step index, -1 for "no error", None when unparsed.

    Accepts `\\boxed{3}`, "Step 3", "paragraph 3", a bare leading "3" (1-based step numbers, as
    the prompt asks), "-1", "none" / "no error" / "all steps are correct".  A number outside
    1..num_steps (other than -1) is unparsed, not clamped.
    """
    if not isinstance(text, str):
        return None
    for pat in _PATTERNS:
        m = pat.search(text)
        if m:
            if len(m.group(1)) > 12:  # no step number is that long (and int() refuses past 4,300 digits)
                return None
            n = int(m.group(1))
            if n == -1:
                return -1
            return n - 1 if 1 <= n <= num_steps else None
    if _NONE_RE.search(text):
        return -1
    return None


def judge_prompt(trace: Trace, template: str = JUDGE_TEMPLATE) -> str:
    steps = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(trace.steps))
    return template.format(prompt=trace.prompt.strip(), steps=steps)


class RuleJudge:
    """The gym's exact first-error checker, wrong with probability `error_rate` per trace (then it
    names a uniformly drawn other location among -1..S-1).  Seeded per (seed, trace index)."""

    name = "rule"

    def __init__(self, error_rate: float = 0.0, seed: int = 0):
        if not 0.0 <= error_rate <= 1.0:
            raise InputError(f"expected a rate in [0, 1], got {error_rate}", field="judge_error_rate")
        self.error_rate, self.seed = error_rate, seed

    def judge(self, items: Sequence[tuple[int, Trace]]) -> list[dict]:
        out = []
        for idx, t in items:
            truth = first_error(t.steps, parse_prompt(t.prompt))
            rng = random.Random(rollout_seed(self.seed, idx, -2, "judge"))
            verdict = truth
            if rng.random() < self.error_rate:
                others = [i for i in range(-1, len(t.steps)) if i != truth]
                verdict = rng.choice(others) if others else truth
            out.append({"first_error": verdict, "text": None})
        return out


class LMJudge:
    """Any causal LM (or OpenAI-compatible endpoint) asked for the first wrong step, greedily."""

    name = "lm"

    def __init__(self, sampler, template: str = JUDGE_TEMPLATE, max_new_tokens: int = 32):
        self.sampler, self.template, self.max_new_tokens = sampler, template, max_new_tokens
        self.unparsed = 0

    @classmethod
    def from_model(cls, model: str = "", base_url: str = "", **kw) -> LMJudge:
        return cls(make_sampler(model, "openai" if base_url else "hf", base_url), **kw)

    def judge(self, items: Sequence[tuple[int, Trace]]) -> list[dict]:
        prompts = [judge_prompt(t, self.template) for _, t in items]
        params = SamplingParams(n=1, max_new_tokens=self.max_new_tokens, temperature=0.0, stop=["\n\n"])
        groups = self.sampler.sample(prompts, params, seeds=[0] * len(prompts))
        out = []
        for (_, t), g in zip(items, groups):
            text = g[0].text
            fe = parse_verdict(text, len(t.steps))
            self.unparsed += fe is None
            out.append({"first_error": fe, "text": text})
        return out


def judge_traces(items: Sequence[tuple[int, Trace]], verdicts: Sequence[dict], judge_name: str) -> list[Trace]:
    """Judge labels (`method` "judge"): 1 before the judged first error, 0 from it on; an unparsed
    verdict leaves the trace unlabelled with `meta["label"]["dropped"] = "unparsed_verdict"`."""
    out = []
    for (_, t), v in zip(items, verdicts):
        info = {"judge": judge_name, "first_error": v["first_error"], "verdict_text": v["text"]}
        if v["first_error"] is None:
            out.append(dataclasses.replace(t, labels=None, meta={**t.meta, "label": {
                "method": "judge", "dropped": "unparsed_verdict", **info}}))
        else:
            out.append(dataclasses.replace(t, labels=StepLabels(
                values=rules.omega_labels(len(t.steps), v["first_error"]), method="judge", meta=info)))
    return out


def consensus_traces(items: Sequence[tuple[int, Trace]], verdicts: Sequence[dict], counted, k: int,
                     judge_name: str) -> list[Trace]:
    """MC/judge consensus labels (`method` "consensus"; arXiv 2501.07301): a trace keeps its MC hard
    labels, cut after the MC first error, only when the judge names the same first error; otherwise
    it is unlabelled with `meta["label"]["dropped"] = "disagree"`. `counted` is `mc_counts`' output."""
    out = []
    for (_, t), v, (counts, cost) in zip(items, verdicts, counted):
        hard = rules.mc_hard_labels(counts, k)
        mc_fe = rules.first_error_from_labels(hard)
        info = {"k": k, "correct_counts": counts, "mc_first_error": mc_fe, "judge": judge_name,
                "judge_first_error": v["first_error"], "verdict_text": v["text"]}
        keep = v["first_error"] is not None and rules.consensus_keep(mc_fe, v["first_error"])
        if keep:
            values = hard if mc_fe == -1 else hard[:mc_fe + 1] + [None] * (len(hard) - mc_fe - 1)
            out.append(dataclasses.replace(t, labels=StepLabels(
                values=values, method="consensus", rollouts=cost.rollouts, policy_tokens=cost.tokens, meta=info)))
        else:
            out.append(dataclasses.replace(t, labels=None, meta={**t.meta, "label": {
                "method": "consensus", "dropped": "disagree", "rollouts": cost.rollouts,
                "policy_tokens": cost.tokens, **info}}))
    return out
