"""Labeling procedures (mc, omega, scan, progress, consensus) against hand-computed values.

The completer here is a real `Sampler` over the gym whose success is scripted per prefix: from a
prefix whose steps are all right it writes `good(prefix_len)` correct completions out of n (the
exact remaining solution) and wrong ones otherwise; from a wrong prefix every completion is
wrong.  So the expected labels, probe sequences and rollout counts can be worked out by hand.
"""

from __future__ import annotations

import math

import pytest

from prmkit.gym.task import make_trace, parse_prompt, step_is_correct
from prmkit.label import rules
from prmkit.label.mc import label_mc
from prmkit.label.omega import label_omega
from prmkit.label.progress import label_progress
from prmkit.label.rollouts import rollout_seed
from prmkit.label.scan import label_scan, self_confidence_by_problem
from prmkit.policy.base import Completion, SamplerStats
from prmkit.schema import Problem


class ScriptedGymCompleter:
    sep = "\n"

    def __init__(self, good=lambda prefix_len, n: n, wrong=None):
        self.good = good  # (number of solution steps in the prefix, n) -> correct completions
        self.wrong = wrong  # (steps written so far) -> text of a wrong completion (default "A:<gold+1>")
        self.stats = SamplerStats()
        self.requests: list[tuple[str, int]] = []

    def sample(self, prompts, params, seeds=None, share_prefix=True):
        out = []
        for p in prompts:
            head, _, body = p.partition("\n")
            chain = parse_prompt(head + "\n")
            done = [s for s in body.split("\n") if s]
            self.requests.append((p, params.n))
            right = all(step_is_correct(s, k, chain) for k, s in enumerate(done))
            good = self.good(len(done), params.n) if right else 0
            rest = chain.solution_steps()[len(done):]
            wrong = (self.wrong and self.wrong(done)) or f"A:{chain.values()[-1] + 1}"
            group = []
            for j in range(params.n):
                text = "\n".join(rest) if j < good else wrong
                group.append(Completion(text=text, token_ids=list(range(len(text))), logprobs=[0.0] * len(text),
                                        steps=text.split("\n"), finish_reason="stop"))
            out.append(group)
        return out


PROB = Problem(id="p", prompt="Q:7,+3,*2,-5\n", answer="15")
RIGHT = "7+3=10\n10*2=20\n20-5=15\nA:15"
WRONG_AT_1 = "7+3=10\n10*2=21\n21-5=16\nA:16"  # step 1 wrong, answer wrong


def trace(text, pid="p"):
    t = make_trace(PROB, text)
    t.problem_id = pid
    return t


def test_mc_hard_and_soft_hand_values():
    comp = ScriptedGymCompleter(good=lambda m, n: 1 if m == 1 else n)  # prefix of 1 step: 1 of n right
    t = trace(WRONG_AT_1)
    hard = label_mc([t], comp, k=4, mode="hard")[0].labels
    soft = label_mc([t], comp, k=4, mode="soft")[0].labels
    # prefixes 0..3: [7+3=10] right (1/4), [..,10*2=21] wrong (0/4), wrong, terminal wrong (free)
    assert hard.values == [1.0, 0.0, 0.0, 0.0]
    assert soft.values == [0.25, 0.0, 0.0, 0.0]
    assert hard.meta["correct_counts"] == [1, 0, 0, 0]
    assert hard.rollouts == 12  # 3 non-terminal prefixes x 4; the answer step costs nothing
    assert hard.method == "mc_hard" and soft.method == "mc_soft"
    wrong_len = len("A:16")
    right_len = len("10*2=20\n20-5=15\nA:15")
    assert hard.policy_tokens == right_len + 3 * wrong_len + 4 * wrong_len + 4 * wrong_len


def test_mc_all_steps_correct_and_no_correct_rollout_at_step_1():
    comp = ScriptedGymCompleter()
    assert label_mc([trace(RIGHT)], comp, k=2)[0].labels.values == [1.0] * 4
    dead = ScriptedGymCompleter(good=lambda m, n: 0)  # nothing ever succeeds after a right prefix either
    lab = label_mc([trace(WRONG_AT_1)], dead, k=2)[0].labels
    assert lab.values == [0.0] * 4 and rules.first_error_from_labels(lab.values) == 0


def test_single_step_traces():
    p1 = Problem(id="s", prompt="Q:4,+1\n", answer="5")
    comp = ScriptedGymCompleter()
    only_answer = make_trace(p1, "A:5")  # one (terminal) step: labelled by its own correctness, free
    lab = label_mc([only_answer], comp, k=3)[0].labels
    # "A:5" skips the step 4+1=5 (gold: wrong at 0) but states the right answer: MC labels are
    # values, so the step is labelled good, and no rollout is spent on the terminal prefix
    assert only_answer.first_error == 0 and lab.values == [1.0] and lab.rollouts == 0
    wrong_answer = make_trace(p1, "A:6")
    assert label_mc([wrong_answer], comp, k=3)[0].labels.values == [0.0]
    cut = make_trace(p1, "4+1=5")  # one step, no final answer: rolled out
    lab = label_mc([cut], comp, k=3)[0].labels
    assert lab.values == [1.0] and lab.rollouts == 3
    om = label_omega([cut], comp, k=3)[0].labels
    assert om.values == [1.0] and om.rollouts == 3


def test_omega_binary_search_probes_and_labels():
    p = Problem(id="L", prompt="Q:1,+1,+1,+1,+1,+1,+1,+1\n", answer="9")
    steps = ["1+1=2", "2+1=3", "3+1=4", "4+1=6", "6+1=7", "7+1=8", "8+1=9", "A:9"]  # error at step 3
    t = make_trace(p, "\n".join(steps))
    assert t.first_error == 3 and t.outcome == 1.0  # right answer, wrong step
    comp = ScriptedGymCompleter()
    # right final answer: the terminal prefix has MC 1, so the search stops there (MC is a value)
    assert label_omega([t], comp, k=2)[0].labels.values == [1.0] * 8
    t.steps[-1], t.final_answer, t.outcome = "A:10", "10", 0.0
    lab = label_omega([t], comp, k=2)[0].labels
    # probes: 7 (terminal, wrong, free) -> mid 3 (dead) -> mid 1 (alive) -> mid 2 (alive) -> error 3
    assert lab.meta["probes"] == [[7, 0], [3, 0], [1, 2], [2, 2]]
    assert lab.values == [1.0, 1.0, 1.0, 0.0, None, None, None, None]
    assert lab.rollouts == 6  # 3 rolled-out probes x k=2, vs 7 x 2 = 14 for mc
    assert len(lab.meta["probes"]) <= math.ceil(math.log2(8)) + 1
    mc = label_mc([t], comp, k=2)[0].labels
    assert rules.first_error_from_labels(mc.values) == 3 and mc.rollouts == 14


def test_omega_and_mc_share_rollout_seeds():
    assert rollout_seed(0, 5, 2) == rollout_seed(0, 5, 2)
    assert len({rollout_seed(0, i, j) for i in range(20) for j in range(-1, 10)}) == 20 * 11
    assert rollout_seed(1, 5, 2) != rollout_seed(0, 5, 2) and rollout_seed(0, 5, 2, "prover") != rollout_seed(0, 5, 2)


def test_scan_self_confidence_drop_correct_and_normalised_labels():
    right, wrong = trace(RIGHT), trace(WRONG_AT_1)
    low = [trace(WRONG_AT_1, "low"), trace(RIGHT, "low")]  # SC 0.5 -> dropped
    traces = [right, right, right, wrong] + low  # problem p: SC 3/4 = 0.75 -> kept
    assert self_confidence_by_problem(traces) == {"p": 0.75, "low": 0.5}
    comp = ScriptedGymCompleter(good=lambda m, n: 3 if m == 1 else n)  # c_0 = 3/4
    out = label_scan(traces, comp, k=4)
    assert out[0].labels.values == [1.0] * 4 and out[0].labels.rollouts == 0  # correct: no rollouts
    lab = out[3].labels
    # sequential MC: prefix 0 -> 3/4, prefix 1 -> 0/4: stop; c_0/SC = 0.75/0.75 = 1.0
    assert lab.values == [1.0, 0.0, None, None] and lab.rollouts == 8
    assert lab.meta["first_error"] == 1 and lab.meta["loss"] == "bce_soft"
    assert out[4].labels is None and out[4].meta["label"]["dropped"] == "low_self_confidence"
    comp2 = ScriptedGymCompleter(good=lambda m, n: 1 if m == 1 else n)  # c_0 = 1/4 -> 0.25 / 0.75 = 1/3
    lab2 = label_scan([right, right, right, wrong], comp2, k=4)[3].labels
    assert lab2.values[0] == pytest.approx(1 / 3) and lab2.values[1] == 0.0
    hard = label_scan([right, right, right, wrong], comp2, k=4, robust=False)[3].labels
    assert hard.values == [1.0, 0.0, None, None] and hard.meta["loss"] == "bce"


def test_scan_single_problem_all_wrong_first_step():
    dead = ScriptedGymCompleter(good=lambda m, n: 0)
    traces = [trace(RIGHT)] * 3 + [trace(WRONG_AT_1)]
    lab = label_scan(traces, dead, k=2)[3].labels
    assert lab.values == [0.0, None, None, None] and lab.rollouts == 2


def test_progress_q_values_and_relative_progress():
    # Q_0 (question alone) = 4/4, after step 0 = 2/4, after step 1 (wrong) = 0, later 0, answer 0
    comp = ScriptedGymCompleter(good=lambda m, n: {0: 4, 1: 2}.get(m, n))
    lab = label_progress([trace(WRONG_AT_1)], comp, k=4)[0].labels
    assert lab.meta["q_values"] == [1.0, 0.5, 0.0, 0.0, 0.0]
    assert lab.meta["progress"] == [-0.5, -0.5, 0.0, 0.0]
    assert lab.meta["relative_progress"] == [0.5, 0.0, None, None]
    assert lab.values == [0.0, 0.0, 0.0, 0.0]  # 0.5 < eps 0.8; 0/0 after a dead prefix -> 0
    assert lab.rollouts == 16  # Q_0..Q_3 rolled out, the terminal answer free
    bok = label_progress([trace(WRONG_AT_1)], comp, k=4, prover_bok=2)[0].labels
    assert bok.meta["q_values"][:2] == [1.0, pytest.approx(0.75)]  # 1 - (1 - 0.5)^2
    ok = label_progress([trace(RIGHT)], comp, k=4)[0].labels
    assert ok.meta["relative_progress"] == [0.5, 2.0, 1.0, 1.0] and ok.values == [0.0, 1.0, 1.0, 1.0]


def test_omega_tree_hand_built_search():
    from prmkit.label.omega_tree import TreeParams, build_tree, tree_traces
    from prmkit.label.rollouts import RolloutConfig, answer_key

    # from the question alone 1 of 2 rollouts is right (MC 1/2); the wrong one is the single
    # step "A:16"; deeper right prefixes always succeed
    comp = ScriptedGymCompleter(good=lambda m, n: 1 if m == 0 else n)
    t = trace(RIGHT)
    key = answer_key(t)
    nodes = build_tree(0, "p", PROB.prompt, key, comp, RolloutConfig(k=2), TreeParams(search_limit=5))
    assert nodes[0].steps == () and nodes[0].mc == 0.5 and nodes[0].rollouts == 2
    # node 1: the right rollout (MC 1, free); node 2: the binary-searched wrong rollout "A:16",
    # a terminal wrong prefix (MC 0, free); then the pool is empty
    assert [(n.steps, n.mc, n.parent, n.estimated) for n in nodes[1:]] == [
        (tuple(RIGHT.split("\n")), 1.0, 0, False), (("A:16",), 0.0, 0, True)]
    assert nodes[0].visits == 1 and len(comp.requests) == 1
    recs = tree_traces(nodes, "p", PROB.prompt, 2)
    assert [r.labels.values for r in recs] == [[None, None, None, 1.0], [0.0]]
    assert sum(r.labels.rollouts for r in recs) == 2


def test_omega_tree_binary_search_inside_a_rollout():
    from prmkit.label.omega_tree import TreeParams, build_tree, tree_traces
    from prmkit.label.rollouts import RolloutConfig, answer_key

    # the question's wrong rollout goes wrong at its step 1; right prefixes of >= 1 step always succeed
    comp = ScriptedGymCompleter(good=lambda m, n: 1 if m == 0 else n, wrong=lambda done: None if done else WRONG_AT_1)
    nodes = build_tree(0, "p", PROB.prompt, answer_key(trace(RIGHT)), comp, RolloutConfig(k=2))
    right, wrong = tuple(RIGHT.split("\n")), tuple(WRONG_AT_1.split("\n"))
    # binary search over the 4-step wrong rollout: mid 2 (dead, MC 0) -> mid 1 (alive, MC 1) -> stop;
    # the alive prefix's two right rollouts become MC-1 children
    assert [(n.steps, n.mc, n.parent, n.rollouts) for n in nodes] == [
        ((), 0.5, -1, 2), (right, 1.0, 0, 0), (wrong[:2], 0.0, 0, 2), (wrong[:1], 1.0, 0, 2),
        (right, 1.0, 3, 0), (right, 1.0, 3, 0)]
    recs = tree_traces(nodes, "p", PROB.prompt, 2)
    assert recs[1].labels.values == [1.0, 0.0] and recs[3].labels.values == [1.0, None, None, 1.0]
    assert sum(r.labels.rollouts for r in recs) == 6
