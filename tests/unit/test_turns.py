"""Turn traces and turn-PRM evaluation on hand-built episodes."""

from __future__ import annotations

import pytest

from prmkit.agents.env import Episode, Turn
from prmkit.agents.turns import bon_rank1, episode_trace, rank1, score_by_turn_index, turn_auroc


def ep(pid, turns, outcome, first_error, useful):
    return Episode(problem_id=pid, prompt="Q:x\n", finished=True, answer="1", outcome=outcome, first_error=first_error,
                   turns=[Turn(action=a, observation=o, gold={"useful": u}) for (a, o), u in zip(turns, useful)])


def test_episode_trace_labels_and_text():
    e = ep("p", [("S:K11 ceo", "O:K11 ceo P12"), ("S:P99 age", "O:P99 age 40"), ("A:1", "")], 0.0, 1,
           [True, False, False])
    t = episode_trace(e)
    assert t.steps == ["S:K11 ceo\nO:K11 ceo P12", "S:P99 age\nO:P99 age 40", "A:1"]
    assert t.labels.values == [1.0, 0.0, None] and t.first_error == 1 and t.outcome == 0.0
    clean = episode_trace(ep("q", [("A:1", "")], 1.0, -1, [True]))
    assert clean.labels.values == [1.0]


def test_rank1_and_bon_by_hand():
    assert rank1([[(0.9, True), (0.1, False)], [(0.2, True), (0.8, False)], [(0.5, False), (0.5, True)]]) == \
        pytest.approx(1 / 3)
    traces = [episode_trace(ep(pid, [("A:1", "")], o, -1, [True])) for pid, o in
              [("a", 1.0), ("a", 0.0), ("b", 0.0), ("b", 1.0)]]
    assert bon_rank1(traces, [0.7, 0.2, 0.9, 0.1]) == 0.5
    assert bon_rank1(traces, [0.7, 0.2, 0.1, 0.9]) == 1.0


def test_turn_auroc_and_index_bias_by_hand():
    traces = [episode_trace(ep("a", [("x", "o"), ("y", "o")], 1.0, -1, [True, False])),
              episode_trace(ep("b", [("x", "o"), ("y", "o")], 0.0, 1, [True, True]))]
    scores = [[0.9, 0.2], [0.8, 0.4]]
    # positives (useful) 0.9, 0.8, 0.4 vs the negative 0.2: every pair ranked right
    assert turn_auroc(scores, traces) == pytest.approx(1.0)
    assert turn_auroc([[0.1, 0.9], [0.8, 0.4]], traces) == pytest.approx(0.0)  # the negative beats all three
    assert turn_auroc([[0.1, 0.5], [0.8, 0.4]], traces) == pytest.approx(1 / 3)  # only 0.8 > 0.5
    bias = score_by_turn_index(scores, traces)
    assert bias == {"true": {"0": pytest.approx(0.85), "1": pytest.approx(0.4)}, "false": {"1": pytest.approx(0.2)}}
    assert turn_auroc(scores, traces, key="nope") is None
