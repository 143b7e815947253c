"""The labelling worker: loads what the configured method needs (once per process or Ray actor)
and labels chunks of traces with it (`label/methods.py`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from prmkit.errors import InputError
from prmkit.label.config import LabelConfig
from prmkit.label.judge import LMJudge, RuleJudge
from prmkit.label.methods import get_labeller
from prmkit.label.rollouts import RolloutConfig
from prmkit.policy.sample import make_sampler
from prmkit.resolve import default_policy
from prmkit.schema import Problem, Trace, to_dict

MODEL_INPUTS = ("sampler", "prover", "judge")  # inputs that load a model


class Worker:
    """Labels chunks with `cfg.method`; holds its models, loaded on first use or by `load`."""

    def __init__(self, cfg: LabelConfig, problems: dict[str, Problem] | None, sc_map: dict[str, float] | None = None):
        threads = cfg.threads or int(os.environ.get("PRMKIT_LABEL_THREADS", "0") or 0)
        if threads > 0:
            import torch  # (heavy: only when a thread count is set)

            torch.set_num_threads(threads)
        self.cfg, self.problems, self.sc_map = cfg, problems, sc_map
        self.method = get_labeller(cfg.method)
        self._models: dict[str, Any] = {}

    def model(self, name: str):
        """The sampler, prover or judge, loaded once."""
        if name not in self._models:
            self._models[name] = {"sampler": self._load_sampler, "prover": self._load_prover,
                                  "judge": self._load_judge}[name]()
        return self._models[name]

    def _make_sampler(self, model: str, backend: str, base_url: str):
        c = self.cfg
        if backend == "hf" and not model:
            model = default_policy()   # `label` checked the data is the gym's and said so (`resolve.policy_path`)
        return make_sampler(model, backend, base_url, c.sep, c.batch_size, device=c.device, prompt_options=c)

    def _load_sampler(self):
        return self._make_sampler(self.cfg.model, self.cfg.sampler, self.cfg.base_url)

    def _load_prover(self):
        return self._make_sampler(self.cfg.prover, "hf", "") if self.cfg.prover else self.model("sampler")

    def _load_judge(self):
        c = self.cfg
        if c.judge == "rule":
            return RuleJudge(c.judge_error_rate, c.seed)
        if c.judge == "lm":
            model = c.judge_model or ("" if c.judge_base_url else default_policy())  # see LabelConfig.judge_model
            return LMJudge.from_model(model, c.judge_base_url, max_new_tokens=c.judge_max_new_tokens)
        raise InputError(f"unknown judge {c.judge!r}; expected rule or lm", field="judge")

    def load(self) -> "Worker":
        """Load the models this method uses now (so that a missing model fails before anything is written)."""
        for name in self.method.needs:
            if name in MODEL_INPUTS:
                self.model(name)
        return self

    def input(self, name: str):
        """One of `registry.INPUTS` for this run."""
        if name in MODEL_INPUTS:
            return self.model(name)
        if name == "problems":
            return self.problems
        if name == "self_confidence":
            return self.sc_map
        if name == "rollouts":
            c = self.cfg
            return RolloutConfig(k=c.k, max_new_tokens=c.max_new_tokens, temperature=c.temperature, seed=c.seed,
                                 sep=c.sep)
        raise KeyError(name)

    def settings(self) -> dict[str, Any]:
        """The method's settings: the config fields of the same names (the batch size at least 1)."""
        fields = vars(self.cfg)
        missing = [s for s in self.method.settings if s not in fields]
        if missing:
            raise TypeError(f"label method {self.method.name!r} takes {missing}, which LabelConfig lacks")
        return {s: max(1, fields[s]) if s == "batch_size" else fields[s] for s in self.method.settings}

    def label_traces(self, items: Sequence[tuple[int, Trace]]) -> list[Trace]:
        """The chunk's traces labelled, in order."""
        return self.method(items, {n: self.input(n) for n in self.method.needs}, self.settings())

    def label(self, items: Sequence[tuple[int, Trace]]) -> list[str]:
        """JSONL lines for the chunk, in order."""
        return [json.dumps(to_dict(t), ensure_ascii=False) + "\n" for t in self.label_traces(items)]
