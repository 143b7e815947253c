"""Turn-level reward models: episodes as turn traces, labels per turn, and evaluation against turn gold.

A turn trace is a prmkit `Trace` whose steps are the turns (`action\\nobservation`), so every
single-turn tool applies unchanged: `prmkit train prm|orm|implicit` trains a turn PRM that scores
every turn end in one pass, `prmkit eval processbench` gives first-wrong-turn F1 with a threshold
fitted on another split, `prmkit score` scores. This module adds what is specific to turns: labels
from the environment's gold or from Monte Carlo continuations, AUROC of turn scores against
"useful", best-of-N rank@1 of a PRM against an ORM (ToolComp's comparison, arXiv 2501.01290), and
the mean score by turn index (early-turn bias).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from prmkit.agents.env import Episode
from prmkit.schema import Problem, StepLabels, Trace


def turn_text(turn) -> str:
    return turn.action + ("\n" + turn.observation if turn.observation else "")


def episode_trace(episode: Episode, labels: str = "gold") -> Trace:
    """The turn trace of an episode. `labels="gold"`: 1 before the first wrong turn, 0 at it, unknown after
    (the environment's exact gold; none when it gives no gold); `"none"`: no labels."""
    first = episode.first_error
    values = None
    if labels == "gold" and first is not None:
        n = len(episode.turns)
        values = [1.0] * n if first == -1 else [1.0] * first + [0.0] + [None] * (n - first - 1)
    return Trace(problem_id=episode.problem_id, prompt=episode.prompt, steps=[turn_text(t) for t in episode.turns],
                 final_answer=episode.answer, outcome=episode.outcome, first_error=first,
                 labels=StepLabels(values=values, method="turn-gold") if values is not None else None,
                 meta={"k": episode.meta.get("k"), "finished": episode.finished,
                       "turn_gold": [t.gold for t in episode.turns]})


def mc_turn_values(outcomes_after: Sequence[Sequence[float]]) -> list[float]:
    """Monte Carlo value of each turn prefix: the mean outcome of the K continuations rolled out after it."""
    return [sum(o) / len(o) for o in outcomes_after]


def turn_auroc(scores: Sequence[Sequence[float]], traces: Sequence[Trace], key: str = "useful") -> float | None:
    """AUROC of turn scores against a per-turn gold flag (`useful` by default), over every turn with gold."""
    from prmkit.evaluate.metrics import auroc

    s, y = [], []
    for sc, t in zip(scores, traces):
        for k, g in enumerate(t.meta.get("turn_gold") or []):
            if g and key in g and k < len(sc):
                s.append(float(sc[k]))
                y.append(bool(g[key]))
    if not y or all(y) or not any(y):
        return None
    return auroc(s, y)


def rank1(groups: Sequence[Sequence[tuple[float, bool]]]) -> float:
    """Best-of-N rank@1: share of problems whose highest-scored candidate succeeded (ties: the first)."""
    hits = [max(g, key=lambda c: c[0])[1] for g in groups if g]
    return sum(hits) / max(1, len(hits))


def bon_rank1(traces: Sequence[Trace], scores: Sequence[float]) -> float:
    """rank@1 of episodes grouped by problem, each scored by one response score."""
    groups: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for t, s in zip(traces, scores):
        groups[t.problem_id].append((float(s), bool(t.outcome and t.outcome > 0.5)))
    return rank1(list(groups.values()))


def score_by_turn_index(scores: Sequence[Sequence[float]], traces: Sequence[Trace], key: str = "useful") -> dict:
    """Mean turn score at each turn index, for turns whose gold `key` is true and false (the bias of scores
    by position: a PRM that rates early turns high whatever they do shows it here)."""
    acc: dict[str, dict[int, list[float]]] = {"true": defaultdict(list), "false": defaultdict(list)}
    for sc, t in zip(scores, traces):
        for k, g in enumerate(t.meta.get("turn_gold") or []):
            if g and key in g and k < len(sc):
                acc["true" if g[key] else "false"][k].append(float(sc[k]))
    return {side: {str(k): sum(v) / len(v) for k, v in sorted(d.items())} for side, d in acc.items()}


def problems_by_id(problems: Sequence[Problem]) -> dict[str, Problem]:
    return {p.id: p for p in problems}
