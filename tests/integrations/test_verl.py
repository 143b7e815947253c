"""prmkit's verl reward manager on verl's real batch type (DataProto), run in .venv-verl (`make test-verl`).

The gym policy's tokenizer and the shipped gym PRM (a real prmkit reward model, loaded through the
resolver) score gym responses; the token rewards must equal what prmkit's own RL path computes for
the same responses: its rollout layout (`build_batch`), its step ends, its PURE transform and its
step-end placement (`step_to_token_rewards`)."""

import asyncio

import numpy as np
import pytest
import torch

verl = pytest.importorskip("verl")  # collected only in .venv-verl: tests/integrations/conftest.py

from verl import DataProto  # noqa: E402

from prmkit.integrations.verl import PrmkitRewardManager  # noqa: E402
from prmkit.rl import advantages as adv_fns  # noqa: E402
from prmkit.rl.methods import pure_step_rewards  # noqa: E402
from prmkit.rl.rollout import build_batch  # noqa: E402
from prmkit.steps import split_steps, step_end_positions_joint  # noqa: E402

# two prompts x two responses; the second response of each prompt has a wrong step
ROWS = [
    ("Q:7,+3,*2\n", "7+3=10\n10*2=20\nA:20", "20"),
    ("Q:7,+3,*2\n", "7+3=11\n11*2=22\nA:22", "20"),
    ("Q:5,-2\n", "5-2=3\nA:3", "3"),
    ("Q:5,-2\n", "5-2=4\nA:4", "3"),
]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from prmkit.resolve import default_policy

    return AutoTokenizer.from_pretrained(default_policy())


@pytest.fixture(scope="module")
def rm():
    from prmkit.resolve import parse_rm_spec

    return parse_rm_spec("gym-prm", "rm", gym_data=True).load(device="cpu")


def outcome_score(data_source, solution_str, ground_truth, extra_info=None, **_):
    return float(solution_str.strip().splitlines()[-1] == "A:" + ground_truth)


def verl_batch(tok):
    """A DataProto laid out as verl's rollout writes it: left-padded prompts, right-padded responses."""
    prompts = [tok.encode(p, add_special_tokens=False) for p, _, _ in ROWS]
    responses = [tok.encode(r, add_special_tokens=False) + [tok.eos_token_id] for _, r, _ in ROWS]
    P, T, pad = max(map(len, prompts)), max(map(len, responses)), tok.pad_token_id
    prompt_t = torch.tensor([[pad] * (P - len(p)) + p for p in prompts])
    resp_t = torch.tensor([r + [pad] * (T - len(r)) for r in responses])
    att = torch.tensor([[0] * (P - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (T - len(r))
                        for p, r in zip(prompts, responses)])
    data = DataProto.from_single_dict({
        "prompts": prompt_t, "responses": resp_t, "attention_mask": att,
        "input_ids": torch.cat([prompt_t, resp_t], 1), "response_mask": att[:, P:],
        "uid": np.array(["a", "a", "b", "b"], dtype=object),
        "data_source": np.array(["gym"] * 4, dtype=object),
        "reward_model": np.array([{"ground_truth": g} for _, _, g in ROWS], dtype=object),
        "extra_info": np.array([{} for _ in ROWS], dtype=object),
    })
    return data, prompts, responses


def prmkit_reference(tok, rm, prompts, responses, credit):
    """prmkit's own RL path for the same responses: build_batch layout, step ends, rm scores, placement."""
    ends, steps = [], []
    for (_, text, _), r in zip(ROWS, responses):
        s = split_steps(text, "\n")
        steps.append(s)
        ends.append(step_end_positions_joint(tok, r[:-1], s, "\n"))
    outcomes = [outcome_score(None, t, g) for _, t, g in ROWS]
    batch = build_batch(prompts, responses, ends, outcomes, [0, 0, 1, 1], tok.pad_token_id)
    grid = torch.zeros(batch.step_mask.shape)
    for b, row in enumerate(rm.score([p for p, _, _ in ROWS], steps)):
        grid[b, :len(row)] = torch.tensor(row)
    T = batch.num_response_tokens
    if credit == "pure":
        process = pure_step_rewards(grid, batch.step_mask, "min", 0.1)
    else:
        process = torch.where(batch.step_mask, grid, torch.zeros_like(grid))
    tok_r = adv_fns.step_to_token_rewards(process, batch.step_end, batch.step_mask, T)
    last = batch.response_mask.sum(-1) - 1
    tok_r[torch.arange(len(ROWS)), last] += batch.outcomes
    return tok_r, batch, grid


@pytest.mark.parametrize("credit", ["pure", "outcome+process"])
def test_reward_loop_path_equals_prmkit_rl(tok, rm, credit):
    data, prompts, responses = verl_batch(tok)
    mgr = PrmkitRewardManager(tokenizer=tok, compute_score=outcome_score, rm_model=rm, rm="gym-prm", credit=credit)
    # verl's RewardLoopWorker: run_single on one-row slices; RewardLoopManager: assemble on the class
    results = [asyncio.run(mgr.run_single(data[i:i + 1])) for i in range(len(data))]
    rm_scores = PrmkitRewardManager.assemble_rm_scores(data, [r["reward_score"] for r in results])
    want, batch, grid = prmkit_reference(tok, rm, prompts, responses, credit)
    assert rm_scores.shape == data.batch["responses"].shape
    torch.testing.assert_close(rm_scores, want, rtol=0, atol=1e-6)
    # the same tensor from the one-call batch API
    torch.testing.assert_close(mgr(data), want, rtol=0, atol=1e-6)
    # placement by hand: each nonzero sits on a step's last character (the char before "\n"), plus EOS
    for b, (_, text, _) in enumerate(ROWS):
        chars = [tok.decode([t]) for t in responses[b]]
        ends = [i for i, c in enumerate(chars[:-1]) if chars[i + 1] in ("\n", tok.eos_token)]
        assert ends == batch.step_end[b, :batch.step_mask[b].sum()].tolist()
    if credit == "outcome+process":  # per-row total = outcome + sum of the PRM's step scores
        totals = torch.tensor([outcome_score(None, t, g) for _, t, g in ROWS]) + grid.sum(-1)
        torch.testing.assert_close(rm_scores.sum(-1), totals, rtol=0, atol=1e-5)


def test_verl_estimator_runs_on_prmkit_rewards(tok, rm):
    """verl's REINFORCE++ estimator over the rewards: its returns are prmkit's reward-to-go (gamma 1)."""
    from verl.trainer.ppo.core_algos import compute_reinforce_plus_plus_outcome_advantage
    from verl.trainer.config import AlgoConfig

    data, prompts, responses = verl_batch(tok)
    mgr = PrmkitRewardManager(tokenizer=tok, compute_score=outcome_score, rm_model=rm, rm="gym-prm")
    rewards = mgr(data)
    mask = data.batch["response_mask"]
    _, returns = compute_reinforce_plus_plus_outcome_advantage(rewards, mask, AlgoConfig(gamma=1.0))
    torch.testing.assert_close(returns, adv_fns.token_returns(rewards, mask.bool()), rtol=0, atol=1e-6)


def test_streaming_config_is_refused(tok, rm):
    from omegaconf import OmegaConf

    from prmkit.errors import InputError

    cfg = OmegaConf.create({"reward": {"reward_model": {"enable": False}, "custom_reward_function": {"path": None},
                                       "reward_kwargs": {"rm": "gym-prm"}}})
    with pytest.raises(InputError, match="reward.reward_model.enable=True"):
        PrmkitRewardManager(config=cfg, tokenizer=tok, compute_score=outcome_score, rm_model=rm)


def test_example_config_loads_the_manager(tok, rm):
    """docs/examples/verl_prmkit.yaml names the manager and grader through verl's own loader, and its
    reward path passes the manager's check."""
    from pathlib import Path

    from omegaconf import OmegaConf
    from verl.utils.import_utils import load_extern_object

    cfg = OmegaConf.load(Path(__file__).resolve().parents[2] / "docs/examples/verl_prmkit.yaml")
    rmc = cfg.reward.reward_manager
    cls = load_extern_object(rmc.module.path, rmc.name)
    assert cls is PrmkitRewardManager
    grader = load_extern_object(cfg.reward.custom_reward_function.path, cfg.reward.custom_reward_function.name)
    assert grader(data_source="openai/gsm8k", solution_str="so #### 18", ground_truth="18") == 1.0
    cfg.reward.reward_kwargs.rm = "gym-prm"
    mgr = cls(config=cfg, tokenizer=tok, compute_score=outcome_score, rm_model=rm)
    assert mgr.settings.credit == "pure" and mgr.settings.sep == "\n"
