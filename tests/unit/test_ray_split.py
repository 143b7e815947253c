"""The pure pieces of the Ray backends: how work is split and how the parts add back up."""

from __future__ import annotations

from prmkit.ray_pool import round_robin
from prmkit.search.budget import Compute, sum_compute


def test_sum_compute_adds_counts_and_keeps_sizes():
    a = Compute(policy_tokens=10, policy_forward_tokens=30, prm_tokens=7, prm_uncached_tokens=5, policy_parameters=100,
                prm_parameters=50, policy_calls=2, prm_calls=3, wall_s=9.0)
    b = Compute(policy_tokens=4, policy_forward_tokens=6, prm_tokens=1, prm_uncached_tokens=1, policy_parameters=100,
                prm_parameters=50, policy_calls=1, prm_calls=1, wall_s=8.0, forward_measured=False)
    s = sum_compute([a, b], 12.34567)
    assert (s.policy_tokens, s.policy_forward_tokens, s.prm_tokens, s.prm_uncached_tokens) == (14, 36, 8, 6)
    assert (s.policy_calls, s.prm_calls, s.policy_parameters, s.prm_parameters) == (3, 4, 100, 50)
    assert s.wall_s == 12.346 and s.forward_measured is False
    # FLOPs follow from the sums: 2 x 100 x 14 generated + 2 x 50 x 6 uncached
    assert s.flops == 2 * 100 * 14 + 2 * 50 * 6
    assert sum_compute([], 0.0) == Compute()


def test_round_robin_cycles_over_the_first_then_the_rest():
    assert [round_robin("a", ["b", "c"], i) for i in range(5)] == ["a", "b", "c", "a", "b"]
    assert [round_robin("a", [], i) for i in range(3)] == ["a", "a", "a"]


def test_problem_chunks_keep_order():
    from prmkit.search.ray_backend import problem_chunks

    assert problem_chunks(list(range(5)), 0, 2) == [[0, 1, 2], [3, 4]]
    assert problem_chunks(list(range(5)), 2, 2) == [[0, 1], [2, 3], [4]]
    assert problem_chunks(list(range(1)), 0, 4) == [[0]]


def test_score_batches_are_the_models_own():
    from prmkit.score_ray import batches

    # longest first, ties by input order, then cut every batch_size (rewards.discriminative.length_sorted_batches)
    assert batches([3, 9, 5, 9, 1], 5, 2) == [[1, 3], [2, 0], [4]]
    assert batches(None, 5, 2) == [[0, 1], [2, 3], [4]]
