"""Search building blocks against hand-computed values: FLOPs, selection, UCT, PAV ranking,
best-of-N subsampling, beam pruning, MCTS selection/backup and its value targets."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from prmkit.errors import InputError
from prmkit.rewards.base import ScorerStats
from prmkit.schema import Problem
from prmkit.search.base import ProblemResult, SearchParams, SearchRun, Solution, select
from prmkit.search.beam import Beam, keep_top
from prmkit.search.budget import Compute, ComputeMeter, forward_flops


def sol(answer, score, correct=False, tokens=0):
    return Solution(steps=["x"], step_scores=[score], score=score, answer=answer, correct=correct, tokens=tokens)


def test_forward_flops_and_compute_totals():
    assert forward_flops(10, 3) == 60.0
    c = Compute(policy_tokens=100, policy_forward_tokens=250, prm_tokens=40, policy_parameters=1000,
                prm_parameters=500)
    assert c.generation_flops == 2 * 1000 * 100
    assert c.flops == 2 * 1000 * 100 + 2 * 500 * 40
    assert c.flops_with_prefill == 2 * 1000 * 250 + 2 * 500 * 40
    with pytest.raises(ValueError):
        forward_flops(-1, 3)
    # with the PRM's uncached tokens counted, `flops` charges only those; `flops_with_prefill` all 40
    c = Compute(policy_tokens=100, policy_forward_tokens=250, prm_tokens=40, prm_uncached_tokens=25,
                policy_parameters=1000, prm_parameters=500)
    assert c.prm_cached_flops == 2 * 500 * 25
    assert c.flops == 2 * 1000 * 100 + 2 * 500 * 25
    assert c.flops_with_prefill == 2 * 1000 * 250 + 2 * 500 * 40


def test_prefix_cache_counter_by_hand():
    from prmkit.rewards.base import PrefixCacheCounter

    pc = PrefixCacheCounter()
    assert pc.new_tokens([1, 2, 3, 4, 5], [2, 4]) == 5          # cold: every token runs
    assert pc.new_tokens([1, 2, 3, 4, 9, 9], [2, 4]) == 2       # shares the 4-token prefix [1,2,3,4]
    assert pc.new_tokens([1, 2, 7], [2]) == 1                   # shares only [1,2]
    assert pc.new_tokens([1, 2, 3, 4, 5], [2, 4]) == 0          # seen whole
    assert pc.new_tokens([1, 2, 3, 8], [2]) == 2                # [1,2,3] sits inside an earlier step: not kept
    assert pc.new_tokens([1, 2, 3, 4, 9, 7], [2, 4]) == 1       # [1,2,3,4,9]: a position of the 2nd call's last step
    pc.clear()
    assert pc.new_tokens([1, 2, 3, 4, 5], [2, 4]) == 5


def test_compute_meter_reads_deltas():
    class S:
        num_parameters = 7

        class stats:
            forward_tokens, calls = 10, 1

    class R:
        num_parameters = 3
        stats = ScorerStats(tokens_scored=5, calls=2)

    s, r = S(), R()
    meter = ComputeMeter(s, r)
    s.stats.forward_tokens, s.stats.calls = 30, 4
    r.stats.tokens_scored, r.stats.calls = 12, 3
    meter.generated(8)
    meter.generated(4)
    c = meter.finish()
    assert (c.policy_tokens, c.policy_forward_tokens, c.prm_tokens, c.policy_calls, c.prm_calls) == (12, 20, 7, 3, 1)
    assert c.flops == 2 * 7 * 12 + 2 * 3 * 7                   # no uncached count: all PRM tokens


def test_selection_rules_by_hand():
    pool = [sol("5", 0.9), sol("7", 0.3), sol("7", 0.4), sol(None, 2.0)]
    assert select(pool, "argmax") == 0            # the unanswered 2.0 is not eligible while others answer
    assert select(pool, "majority") == 2          # "7" wins 2 votes to 1; its best holder is index 2
    assert select(pool, "weighted") == 0          # 0.9 for "5" vs 0.3 + 0.4 = 0.7 for "7"
    pool[1] = sol("7", 0.6)
    assert select(pool, "weighted") == 1          # 0.6 + 0.4 = 1.0 > 0.9; best holder index 1
    assert select([sol(None, 0.1), sol(None, 0.5)], "weighted") == 1
    assert select([], "argmax") == -1


def test_keep_top_orders_breaks_ties_by_position_and_dedups():
    cands = [Beam(["a"], [], 0.5), Beam(["b"], [], 0.9), Beam(["a"], [], 0.7), Beam(["c"], [], 0.7)]
    assert [c.steps for c in keep_top(cands, 2, dedup=False)] == [["b"], ["a"]]
    assert keep_top(cands, 2, dedup=False)[1] is cands[2]
    assert [c.steps for c in keep_top(cands, 3, dedup=True)] == [["b"], ["a"], ["c"]]


def test_search_params_validate():
    with pytest.raises(InputError, match="select"):
        SearchParams(select="best")
    with pytest.raises(InputError, match="aggregation"):
        SearchParams(aggregation="median")
    with pytest.raises(InputError, match="n >= 1"):
        SearchParams(n=0)


def test_uct_by_hand():
    from prmkit.search.mcts import uct

    assert uct(0.5, 0.7, 3, 1) == pytest.approx(0.5 + 0.7 * math.sqrt(math.log(4) / 2))
    assert uct(0.2, 0.0, 10, 0) == 0.2


def test_mcts_tree_select_and_backup():
    from prmkit.search.mcts import Node, Tree

    t = Tree()
    t.nodes[0].expanded = True
    t.nodes += [Node(0, ["a"], prior=0.2), Node(0, ["b"], prior=0.9), Node(0, ["c"], prior=0.99, terminal=True)]
    t.nodes[0].children = [1, 2, 3]
    assert t.select(0.7) == 2                      # terminal children are never entered
    t.backup(2, 0.1)
    assert (t.nodes[2].visits, t.nodes[2].value_sum, t.nodes[0].visits) == (1, 0.1, 1)
    # Q(2) = 0.1 now: 0.1 + 0.7 sqrt(ln 2 / 2) = 0.512 < 0.2 + 0.7 sqrt(ln 2) = 0.783
    assert t.select(0.7) == 1
    t.nodes[1].terminal = t.nodes[2].terminal = True
    assert t.select(0.7) is None and t.nodes[0].exhausted


def test_mcts_tree_feeds_rest_mcts_value_targets():
    from prmkit.label.mcts_values import tree_nodes
    from prmkit.label.rules import rest_mcts_value_targets
    from prmkit.search.mcts import Node, Tree, export_tree

    problem = Problem(id="p", prompt="Q:2,+3,*2\n", answer="10", task="gym")
    t = Tree()
    t.nodes[0].expanded = True
    t.nodes += [Node(0, ["2+3=5"]), Node(0, ["2+3=6"]), Node(1, ["2+3=5", "5*2=10"])]
    t.nodes[0].children, t.nodes[1].children = [1, 2], [3]
    t.rollouts.append((3, ["2+3=5", "5*2=10", "A:10"], [1.0, 1.0, 1.0], 1.0))   # a finished rollout below node 3
    t.rollouts.append((2, ["2+3=6", "6*2=12", "A:12"], [0.0, 0.0, 0.0], 0.0))
    recs = export_tree(t, problem, "\n")
    # rollouts hang below the node they started from, one node per step beyond it
    assert [r["parent"] for r in recs] == [-1, 0, 0, 1, 3, 2, 5]
    assert [r["terminal"] for r in recs] == [False] * 4 + [True, False, True]
    assert [r["correct"] for r in recs] == [False] * 4 + [True, False, False]
    v = rest_mcts_value_targets(tree_nodes(recs))
    # correct path of K = 3 steps: v_k = k/3; the wrong branch inherits the root's m = 4: max(0, 0 - 1/4) = 0
    assert v[:5] == pytest.approx([0.0, 1 / 3, 0.0, 2 / 3, 1.0])
    assert v[5:] == pytest.approx([0.0, 0.0])


def test_pav_scorer_by_hand():
    from prmkit.search.pav import PAVScorer

    class Fixed:
        def __init__(self, rows, params, tokens):
            self.rows, self.num_parameters, self.tok = rows, params, tokens
            self.aggregation, self.stats = "min", ScorerStats()

        def score(self, prompts, steps):
            self.stats.tokens_scored += self.tok
            return [list(r) for r in self.rows]

    base, prover = Fixed([[0.8, 0.6]], 100, 10), Fixed([[0.5, 0.9]], 300, 20)
    pav = PAVScorer(base, prover, alpha=0.5, q0=0.4)
    # progress = [0.5 - 0.4, 0.9 - 0.5] = [0.1, 0.4]; Q + 0.5 A = [0.85, 0.8]
    assert pav.score(["q"], [["a", "b"]])[0] == pytest.approx([0.85, 0.8])
    # tokens t with (100 + 300) t = 100 * 10 + 300 * 20  ->  17.5 -> 18 (rounded)
    assert pav.stats.tokens_scored == 18 and pav.num_parameters == 400
    no_q0 = PAVScorer(Fixed([[0.8, 0.6]], 1, 1), Fixed([[0.5, 0.9]], 1, 1), alpha=0.5)
    assert no_q0.score(["q"], [["a", "b"]])[0] == pytest.approx([0.8, 0.8])   # first progress taken as 0


def test_best_of_n_subsample_by_hand():
    from prmkit.search.best_of_n import subsample

    p = Problem(id="p", prompt="Q:1,+1\n", answer="2", task="gym")
    results = [ProblemResult(p, [sol("3", 0.9, False, 10), sol("2", 0.5, True, 20), sol("2", 0.6, True, 30),
                                 sol("4", 0.1, False, 40)], chosen=0),
               ProblemResult(p, [sol("2", 0.2, True, 5), sol("9", 0.8, False, 5), sol("9", 0.1, False, 5),
                                 sol("2", 0.1, True, 5)], chosen=0)]
    run = SearchRun("best_of_n", SearchParams(n=4, select="weighted"), results,
                    Compute(prm_tokens=80, policy_parameters=10, prm_parameters=2))
    one = subsample(run, 1)          # first candidates: wrong, right
    assert one["accuracy"] == 0.5 and one["policy_tokens_per_problem"] == (10 + 5) / 2
    three = subsample(run, 3)        # p1: "2" 1.1 vs "3" 0.9 -> right; p2: "9" 0.9 vs "2" 0.2 -> wrong
    assert three["accuracy"] == 0.5 and three["policy_tokens_per_problem"] == (60 + 15) / 2
    assert three["prm_tokens_per_problem"] == 80 * 3 / 4 / 2
    assert three["flops_per_problem"] == 2 * (10 * 75 + 2 * 60) / 2
    assert subsample(run, 3, "argmax")["accuracy"] == 0.0


def test_tokens_to_reach_interpolates_in_log_tokens():
    import prmkit.search.compare as mod

    rows = [{"policy_tokens_per_problem": 100, "accuracy": 0.2}, {"policy_tokens_per_problem": 400, "accuracy": 0.4}]
    assert mod.tokens_to_reach(rows, 0.3) == pytest.approx(200.0)   # halfway in log(100)..log(400)
    assert mod.tokens_to_reach(rows, 0.1) == 100
    assert mod.tokens_to_reach(rows, 0.5) is None


def test_progressive_widening_allowance_by_hand():
    from prmkit.search.mcts import children_allowed

    # branch * ceil((N + 1) ** alpha): N = 0 -> 3, N = 1 -> 3 * ceil(1.414) = 6, N = 3 -> 3 * 2 = 6, N = 8 -> 9
    assert [children_allowed(3, n, 0.5) for n in (0, 1, 3, 4, 8)] == [3, 6, 6, 9, 9]
    assert [children_allowed(3, n, 0.0) for n in (0, 1, 100)] == [3, 3, 3]   # fixed branching


def test_mcts_select_widens_a_visited_node_until_saturated():
    from prmkit.search.mcts import Node, Tree

    t = Tree()
    t.nodes[0].expanded, t.nodes[0].visits = True, 1
    t.nodes += [Node(0, ["a"], prior=0.2), Node(0, ["b"], prior=0.9), Node(0, ["c"], prior=0.5)]
    t.nodes[0].children = [1, 2, 3]
    assert t.select(0.7) == 2                            # no widening: UCT picks the best child
    assert t.select(0.7, branch=3, widen=0.5) == 0       # 3 children < 3 * ceil(2 ** 0.5) = 6: widen the root
    t.nodes[0].saturated = True
    assert t.select(0.7, branch=3, widen=0.5) == 2       # saturated: back to UCT


class _StepScript:
    """A sampler whose first step is always one of `first` (in order) and whose second step ends."""

    sep = "\n"

    def __init__(self, first):
        self.first = first

    def sample(self, prompts, sp, seeds=None):
        from prmkit.policy.base import Completion

        out = []
        for p in prompts:
            if p.endswith("Q\n"):
                texts = [self.first[j % len(self.first)] for j in range(sp.n)]
                out.append([Completion(t, [1] * len(t), [0.0] * len(t), [t], "stop", "\n") for t in texts])
            else:   # EOS at once: the solution ends after its first step
                out.append([Completion("", [2], [0.0], [], "stop", None) for _ in range(sp.n)])
        return out


class _ConstRM:
    aggregation = "min"

    def __init__(self):
        from prmkit.rewards.base import ScorerStats

        self.stats = ScorerStats()

    def score(self, prompts, steps):
        return [[0.5] * len(s) for s in steps]


def test_mcts_merges_identical_sibling_steps():
    from prmkit.search import SEARCHES

    prob = [Problem(id="q", prompt="Q\n", answer="1", task="math")]
    p = SearchParams(branch=3, max_iterations=1, rollout_steps=0, max_step_tokens=4, max_steps=5, max_new_tokens=8)
    runs = {m: SEARCHES["mcts"](prob, _StepScript(["a", "a", "b"]), _ConstRM(), replace(p, merge_siblings=m))
            for m in (False, True)}
    steps = {m: [r["step"] for r in run.results[0].meta["tree"][1:]] for m, run in runs.items()}
    assert steps == {False: ["a", "a", "b"], True: ["a", "b"]}
    # the three samples cost their tokens either way (1 token each)
    assert runs[True].results[0].policy_tokens >= 3


def test_mcts_diagnostics_by_hand():
    from bench.mcts_diagnose import tree_stats, within_problem_auc

    # problem 1: correct 0.9 and 0.5 vs wrong 0.7 -> pairs (0.9>0.7)=1, (0.5>0.7)=0; problem 2: a tie -> 1/2;
    # problem 3 has no wrong solution and is left out
    auc, mixed = within_problem_auc([[(0.9, True), (0.5, True), (0.7, False)], [(0.4, True), (0.4, False)],
                                     [(0.1, True)]])
    assert (auc, mixed) == (pytest.approx(1.5 / 3), 2)
    recs = [{"parent": -1, "step": "", "rollout": False},
            {"parent": 0, "step": "a", "rollout": False}, {"parent": 0, "step": "a", "rollout": False},
            {"parent": 0, "step": "b", "rollout": False}, {"parent": 1, "step": "c", "rollout": False},
            {"parent": 4, "step": "d", "rollout": True}]
    assert tree_stats(recs) == (4, 1, 2)   # 4 sampled children, one duplicate sibling, root: a and b


def test_value_traces_from_an_exported_tree_by_hand(tmp_path):
    import json

    from prmkit.label.mcts_values import trees_to_value_traces, value_traces
    from prmkit.search.mcts import Node, Tree, export_tree

    problem = Problem(id="p", prompt="Q:2,+3,*2\n", answer="10", task="gym")
    t = Tree()
    t.nodes[0].expanded = True
    t.nodes += [Node(0, ["2+3=5"]), Node(0, ["2+3=6"]), Node(1, ["2+3=5", "5*2=10"]),
                Node(2, ["2+3=6"], terminal=True)]                 # ended with an empty step: adds no step
    t.nodes[0].children, t.nodes[1].children, t.nodes[2].children = [1, 2], [3], [4]
    t.rollouts.append((3, ["2+3=5", "5*2=10", "A:10"], [1.0] * 3, 1.0))
    recs = export_tree(t, problem, "\n")
    traces = value_traces(recs, problem)
    # correct path of K = 3 steps: v = 1/3, 2/3, 1; the wrong terminal below node 2 inherits the root's
    # m (= 4): v(2) = max(0, 0 - 1/4) = 0 and so does the terminal; its path has one step
    assert [(tr.steps, tr.outcome) for tr in traces] == [(["2+3=6"], 0.0), (["2+3=5", "5*2=10", "A:10"], 1.0)]
    assert traces[0].labels.values == [0.0]
    assert traces[1].labels.values == pytest.approx([1 / 3, 2 / 3, 1.0])
    f = tmp_path / "trees.jsonl"
    f.write_text(json.dumps({"problem_id": "p", "nodes": recs}) + "\n")
    assert len(trees_to_value_traces(f, [problem])) == 2
    f.write_text(json.dumps({"problem_id": "q", "nodes": recs}) + "\n")
    with pytest.raises(InputError, match="line 1.*problem 'q'|problem 'q'.*line 1"):
        trees_to_value_traces(f, [problem])


def test_error_free_accuracy_by_hand_and_on_the_gym(gym_policy):
    """Right with no step error, counted by hand; then on real gym search output against the gym's own
    first-error function applied to the selected steps."""
    p = Problem(id="p", prompt="Q", answer="1")
    right_clean = Solution(steps=["a"], step_scores=[1.0], score=1.0, answer="1", correct=True, first_error=-1)
    right_lucky = Solution(steps=["b"], step_scores=[1.0], score=1.0, answer="1", correct=True, first_error=0)
    wrong = Solution(steps=["c"], step_scores=[1.0], score=1.0, answer="2", correct=False, first_error=0)
    results = [ProblemResult(problem=p, solutions=[right_clean], chosen=0),
               ProblemResult(problem=p, solutions=[right_lucky], chosen=0),
               ProblemResult(problem=p, solutions=[wrong], chosen=0),
               ProblemResult(problem=p, solutions=[], chosen=-1)]
    run = SearchRun(method="x", params=SearchParams(), results=results, compute=Compute())
    assert run.accuracy == 0.5 and run.error_free_accuracy == 0.25
    ungraded = Solution(steps=["a"], step_scores=[1.0], score=1.0, answer="1", correct=True)  # no gold steps
    assert SearchRun("x", SearchParams(), [ProblemResult(p, [ungraded], 0)], Compute()).error_free_accuracy is None
    assert SearchRun("x", SearchParams(), [], Compute()).error_free_accuracy is None

    from prmkit.gym.task import first_error, make_split, parse_prompt
    from prmkit.gym.checker_rm import GymCheckerRM
    from prmkit.search import SEARCHES

    probs = make_split("long", 12)
    out = SEARCHES["best_of_n"](probs, gym_policy, GymCheckerRM(flip_rate=0.3),
                                SearchParams(n=4, max_new_tokens=160, max_step_tokens=16, max_steps=13))
    want = 0
    for prob, r in zip(probs, out.results):
        if r.chosen >= 0:
            s = r.solutions[r.chosen]
            want += s.correct and first_error(s.steps, parse_prompt(prob.prompt)) == -1
    assert out.error_free_accuracy == want / len(probs)
    assert out.error_free_accuracy <= out.accuracy


def test_mcts_value_gated_widening_select_by_hand():
    from prmkit.search.mcts import Node, Tree

    t = Tree()
    t.nodes[0].expanded, t.nodes[0].visits, t.nodes[0].expansions = True, 1, 1
    t.nodes += [Node(0, ["a"], prior=0.2), Node(0, ["b"], prior=0.4), Node(0, ["c"], prior=0.3)]
    t.nodes[0].children = [1, 2, 3]
    assert t.select(0.0) == 2                                    # no gate: the best child is entered
    assert t.select(0.0, gate=0.5, max_expansions=3) == 0        # every child below 0.5: the root is sampled again
    t.nodes[0].expansions = 3
    assert t.select(0.0, gate=0.5, max_expansions=3) is None     # cap reached, nothing above the gate: dead end
    # a child above the gate is entered; when it turns out a dead end, the search backs out and widens its parent
    t = Tree()
    t.nodes[0].expanded, t.nodes[0].visits, t.nodes[0].expansions = True, 1, 1
    t.nodes += [Node(0, ["a"], prior=0.9), Node(0, ["b"], prior=0.1), Node(1, ["a", "x"], prior=0.2)]
    t.nodes[0].children, t.nodes[1].children = [1, 2], [3]
    t.nodes[1].expanded, t.nodes[1].expansions = True, 1
    assert t.select(0.0, gate=0.5, max_expansions=2) == 1        # node 1's only child is below the gate: widen it
    t.nodes[1].expansions = 2
    assert t.select(0.0, gate=0.5, max_expansions=2) == 0        # node 1 closed; the root has nothing else open
    assert t.nodes[1].exhausted and not t.nodes[0].exhausted
    # without a cap, an expansion that brought no new step ends the widening
    t.nodes[0].saturated = True
    assert t.select(0.0, gate=0.5) is None


class _Cycle(_StepScript):
    """First steps come from `first` in order across calls (so a fresh expansion brings new samples)."""

    def __init__(self, first):
        super().__init__(first)
        self.k = 0

    def sample(self, prompts, sp, seeds=None):
        out = super().sample(prompts, sp, seeds)
        for p, row in zip(prompts, out):
            if p.endswith("Q\n"):
                from prmkit.policy.base import Completion

                texts = [self.first[(self.k + j) % len(self.first)] for j in range(sp.n)]
                self.k += sp.n
                row[:] = [Completion(t, [1] * len(t), [0.0] * len(t), [t], "stop", "\n") for t in texts]
        return out


class _RightStepRM(_ConstRM):
    def score(self, prompts, steps):
        return [[1.0 if s == "r" else 0.0 for s in st] for st in steps]


def test_mcts_value_gated_widening_finds_the_step_the_verifier_accepts():
    from prmkit.search import SEARCHES

    prob = [Problem(id="q", prompt="Q\n", answer="1", task="math")]
    p = SearchParams(branch=2, max_iterations=6, rollout_steps=0, c_uct=0.0, merge_siblings=True, select="argmax",
                     max_step_tokens=4, max_steps=5, max_new_tokens=8)
    first = ["w1", "w2", "w3", "r"]
    plain = SEARCHES["mcts"](prob, _Cycle(first), _RightStepRM(), p).results[0]
    gated = SEARCHES["mcts"](prob, _Cycle(first), _RightStepRM(), replace(p, widen_gate=0.5, max_expansions=4)).results[0]
    root = lambda res: [r["step"] for r in res.meta["tree"] if r["parent"] == 0]  # noqa: E731
    # fixed branching keeps the root's first two samples, both rejected; gating samples the root again and
    # enters "r", whose finished solution (value 1.0 >= end_gate) ends the search
    assert root(plain) == ["w1", "w2"] and plain.solutions[plain.chosen].steps != ["r"]
    assert root(gated) == ["w1", "w2", "w3", "r"]
    assert gated.solutions[gated.chosen].steps == ["r"] and gated.solutions[gated.chosen].score == 1.0


def test_headline_mcts_takes_the_declared_side_run_and_keeps_the_shipped_one():
    from bench.search import MCTS_HEADLINE_PRM, headline_mcts

    own = {"mcts_accuracy": 0.27, "greedy_accuracy_same_budget": 0.27, "mcts_config_name": "a"}
    result = {"beam_matches_bon16": True, "reward_model": "gym", **own,
              MCTS_HEADLINE_PRM: {"mcts_accuracy": 0.8, "greedy_accuracy_same_budget": 0.6, "mcts_config_name": "b",
                                  "reward_model": "sv", "beam_matches_bon16": False}}
    headline_mcts(result, own)
    assert (result["mcts_accuracy"], result["greedy_accuracy_same_budget"], result["mcts_config_name"]) == (0.8, 0.6, "b")
    assert result["shipped_prm_mcts"] == {**own, "reward_model": "gym"}
    assert result["beam_matches_bon16"] is True and result["mcts_reward_model"] == "sv"   # other keys untouched
    plain = {"mcts_accuracy": 0.27}
    headline_mcts(plain, {"mcts_accuracy": 0.27})   # no side run: nothing moves
    assert plain == {"mcts_accuracy": 0.27}


def test_mcts_cache_tags_keep_earlier_names():
    from prmkit.search.presets import MCTS_DEFAULT, mcts_tag

    # names of points cached before the knobs of round 4 existed must not change
    assert mcts_tag(MCTS_DEFAULT) == ""
    assert mcts_tag(dict(widen=0.5, merge_siblings=True, rollout_steps=13, temperature=0.4)) == "-r13-w0.5-m1-t0.4"
    assert mcts_tag(dict(rollout_steps=0, merge_siblings=True, c_uct=0.0, select="argmax", max_iterations=400,
                         widen_gate=0.5, max_expansions=8, branch=2)) == "-r0-w0-m1-t0.8-b2-c0-argmax-i400-g0.5-x8"
    from prmkit.search.presets import BEST_FIRST

    # the preset is the config whose long_dev and long points are cached under this name
    assert mcts_tag(BEST_FIRST) == "-r0-w0-m1-t0.8-c0-argmax-i400-g0.5-x8"
