"""A language model as the judge of agent turns, through prmkit's Sampler interface (a local HF model or
an OpenAI-compatible server): a prompt that shows the question and the turns, a parser of its verdict,
and the precision/recall of its verdicts against an environment's gold (e.g. hopgym's `useful`).

Modes: `critical` (EPO's critical turns, arXiv 2502.12486), `subgoal` (CALM's "this turn achieves a
subgoal", arXiv 2409.12798): a 0/1 flag per turn; `importance` (Sotopia-RL's a_i/3, arXiv 2508.03905):
a 0–3 rating per turn, divided by 3. A reply the parser cannot read is counted and said (its turns
get 0), never silently scored.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import torch

from prmkit.agents.env import Episode
from prmkit.errors import InputError

MODES = ("critical", "subgoal", "importance")
_ASK = {
    "critical": "Which turns were critical for reaching the right answer? Reply with one line "
                "'Critical: <turn numbers, comma-separated>' or 'Critical: none'.",
    "subgoal": "The task's subgoals are the facts the answer needs. Which turns achieve a subgoal? Reply "
               "with one line 'Subgoals: <turn numbers, comma-separated>' or 'Subgoals: none'.",
    "importance": "Rate each turn's importance for the outcome from 0 (none) to 3 (essential). Reply with "
                  "one line per turn: 'Turn <n>: <0-3>'.",
}
_LIST_RE = {"critical": re.compile(r"critical(?:\s+turns?)?\s*[:=]\s*(.*)", re.I),
            "subgoal": re.compile(r"subgoals?(?:\s+turns?)?\s*[:=]\s*(.*)", re.I)}
_RATE_RE = re.compile(r"turn\s*(\d+)\s*[:=\-]\s*([0-3])\b", re.I)


def judge_prompt(episode: Episode, mode: str) -> str:
    """The judge's prompt: the question, each turn's action and observation, and what to reply."""
    if mode not in MODES:
        raise InputError(f"unknown judge mode {mode!r}; expected one of {', '.join(MODES)}", field="judge mode")
    lines = ["You judge the turns of an agent that answers a question with tools.",
             f"Question: {episode.prompt.strip()}"]
    for k, turn in enumerate(episode.turns, 1):
        lines.append(f"Turn {k}: action {turn.action!r}, observation {turn.observation or '(none)'!r}")
    lines.append(_ASK[mode])
    return "\n".join(lines) + "\n"


def parse_verdict(text: str, n_turns: int, mode: str) -> list[float] | None:
    """Per-turn verdicts (1/0 flags, or importance / 3) from the judge's reply; None when unreadable: no
    answer line, a turn number outside 1..n, or (importance) a turn left unrated."""
    text = text.replace("*", "")
    if mode == "importance":
        rated: dict[int, int] = {}
        for turn, score in _RATE_RE.findall(text):
            rated.setdefault(int(turn), int(score))
        if set(rated) != set(range(1, n_turns + 1)):
            return None
        return [rated[k] / 3 for k in range(1, n_turns + 1)]
    m = _LIST_RE[mode].search(text)
    if m is None:
        return None
    body = m.group(1).strip().splitlines()[0] if m.group(1).strip() else ""
    if re.match(r"none\b", body, re.I):
        return [0.0] * n_turns
    turns = [int(x) for x in re.findall(r"\d+", body)]
    if not turns or any(t < 1 or t > n_turns for t in turns):
        return None
    return [1.0 if k in turns else 0.0 for k in range(1, n_turns + 1)]


@dataclass
class Verdicts:
    values: torch.Tensor  # (B, N) per-turn verdicts, 0 on padded turns and on unparsed episodes
    parsed: list[bool]  # (B,) whether the episode's reply was read
    replies: list[str]

    @property
    def unparsed(self) -> int:
        return sum(not p for p in self.parsed)


def lm_verdicts(sampler, episodes: list[Episode], mode: str, max_new_tokens: int = 64, seed: int = 0) -> Verdicts:
    """Ask the judge (greedy) about every episode; unparsed replies are counted and said on stderr."""
    from prmkit.policy.base import SamplingParams

    prompts = [judge_prompt(e, mode) for e in episodes]
    if hasattr(sampler, "render"):
        prompts = [sampler.render(p) for p in prompts]
    params = SamplingParams(n=1, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    replies = [c[0].text for c in sampler.sample(prompts, params)]
    values = torch.zeros((len(episodes), max(len(e.turns) for e in episodes)))
    parsed = []
    for b, (e, reply) in enumerate(zip(episodes, replies)):
        v = parse_verdict(reply, len(e.turns), mode)
        parsed.append(v is not None)
        if v is not None:
            values[b, : len(v)] = torch.tensor(v)
    out = Verdicts(values, parsed, replies)
    if out.unparsed:
        print(f"LM judge ({mode}): {out.unparsed} of {len(episodes)} replies unparsed; their turns get 0",
              file=sys.stderr)
    return out


def judge_agreement(verdicts: Verdicts, episodes: list[Episode], key: str = "useful",
                    threshold: float = 0.5) -> dict:
    """Precision and recall of the judge's positive verdicts (value >= threshold) against the gold `key`
    over the turns of parsed episodes; None where undefined (no positive verdict / no gold positive)."""
    tp = fp = fn = 0
    for b, e in enumerate(episodes):
        if not verdicts.parsed[b]:
            continue
        for k, turn in enumerate(e.turns):
            if key not in turn.gold:
                raise InputError(f"episode {e.problem_id}, turn {k}: no gold {key!r} to compare the judge with",
                                 field=f"gold.{key}")
            said, gold = float(verdicts.values[b, k]) >= threshold, bool(turn.gold[key])
            tp, fp, fn = tp + (said and gold), fp + (said and not gold), fn + (gold and not said)
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "tp": tp, "fp": fp, "fn": fn, "parsed": sum(verdicts.parsed), "unparsed": verdicts.unparsed}


def judge_report(sampler, episodes: list[Episode], mode: str = "critical", key: str = "useful",
                 max_new_tokens: int = 64) -> dict:
    """The issue's judge experiment in one call (for a bench): the judge's verdicts on `episodes` (with
    turn gold) and their precision/recall against gold `key`."""
    return {"mode": mode, **judge_agreement(lm_verdicts(sampler, episodes, mode, max_new_tokens), episodes, key)}


def load_judge(spec: str):
    """A judge sampler: an http(s) base URL (an OpenAI-compatible server) or a local dir / hub id."""
    if spec.startswith(("http://", "https://")):
        from prmkit.policy.openai import OpenAISampler

        return OpenAISampler(spec)
    from prmkit.policy.hf import HFSampler

    return HFSampler.from_pretrained(spec, device="cpu", batch_size=64)
