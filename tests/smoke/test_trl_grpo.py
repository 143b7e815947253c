"""A real client of the TRL adapter: TRL's own GRPOTrainer (installed release) runs one step on the
gym policy with a prmkit reward model as its reward function, and logs the adapter's values."""

from __future__ import annotations

import math

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt, step_is_correct
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.serve.trl_adapter import TRLRewardFunction, message_text


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on the shared 2-core machine, 2 threads of tiny matmuls run ~30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def prefix_correct_fraction(prompt: str, completion: str) -> float:
    """Reference for GymCheckerRM + `mean`: the share of steps before the first wrong one.

    Written from the gym's step checker directly (not through the reward model or the adapter)."""
    steps = [s for s in completion.split("\n") if s.strip()]
    if not steps:
        return 0.0
    chain = parse_prompt(prompt)
    good = 0
    for k, s in enumerate(steps):
        if not step_is_correct(s, k, chain):
            break
        good += 1
    return good / len(steps)


def test_adapter_scores_standard_and_conversational_rows():
    prompt = "Q:7,+3,*2\n"
    completions = ["7+3=10\n10*2=20\nA:20", "7+3=10\n10*2=21\nA:21", "7+3=11\n11*2=22\nA:22", "", "\n\n"]
    for how, ref in [("mean", [1.0, 1 / 3, 0.0, 0.0, 0.0]), ("min", [1.0, 0.0, 0.0, 0.0, 0.0]),
                     ("sum", [3.0, 1.0, 0.0, 0.0, 0.0])]:
        f = TRLRewardFunction(GymCheckerRM(), aggregation=how)
        assert f.__name__ == f"prmkit_{how}"
        got = f([prompt] * 5, completions)
        assert got == pytest.approx(ref), how
        assert f.last_scores[1] == [1.0, 0.0, 0.0] and f.last_scores[3] == []
    # conversational rows: prompt = last user message, completion = the assistant text
    f = TRLRewardFunction(GymCheckerRM(), aggregation="mean", empty_score=None)
    conv_p = [[{"role": "system", "content": "solve"}, {"role": "user", "content": prompt}]] * 2
    conv_c = [[{"role": "assistant", "content": completions[1]}], [{"role": "assistant", "content": ""}]]
    assert f(conv_p, conv_c) == [pytest.approx(1 / 3), None]
    assert message_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}]}], "assistant") == "a"


def test_trl_reads_our_stepwise_export_as_a_standard_dataset():
    """TRL's own format detection (imported here, where TRL is loaded anyway) on our export."""
    from trl.data_utils import is_conversational

    from prmkit.formats.trl import to_trl_dataset
    from tests.unit.test_trl_format import _gym_traces

    row = to_trl_dataset(_gym_traces(2))[0]
    assert not is_conversational(row) and set(row) == {"prompt", "completions", "labels"}


def test_grpo_trainer_one_step_with_the_adapter(tmp_path):
    import datasets
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from prmkit.resolve import default_policy

    torch.manual_seed(0)
    seen: list[tuple[list[str], list[str], list[float]]] = []

    class Recording(TRLRewardFunction):  # the adapter itself, remembering what it was given
        def __call__(self, prompts, completions, **kwargs):
            out = super().__call__(prompts, completions, **kwargs)
            seen.append((list(prompts), list(completions), list(out)))
            return out

    adapter = Recording(GymCheckerRM(), aggregation="mean", name="prmkit_gym")
    problems = make_split("train", 2)
    dataset = datasets.Dataset.from_dict({"prompt": [p.prompt for p in problems]})
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=40, max_steps=1, learning_rate=1e-4, beta=0.0, report_to="none",
                      use_cpu=True, logging_steps=1, save_strategy="no", bf16=False, seed=0,
                      dataloader_num_workers=0, disable_tqdm=True)
    trainer = GRPOTrainer(model=default_policy(), reward_funcs=[adapter], args=args, train_dataset=dataset)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()

    assert seen, "the trainer never called the reward function"
    prompts = [p for call in seen for p in call[0]]
    completions = [c for call in seen for c in call[1]]
    values = [v for call in seen for v in call[2]]
    assert len(completions) == 4 and set(prompts) <= {p.prompt for p in problems}
    # the adapter's values are the gym truth, computed independently
    ref = [prefix_correct_fraction(p, c) for p, c in zip(prompts, completions)]
    assert values == pytest.approx(ref)
    # the trainer logged the mean of the values the adapter returned (public log history only: TRL's
    # private buffers change between versions)
    logged = [h for h in trainer.state.log_history if "rewards/prmkit_gym/mean" in h]
    assert logged and math.isclose(logged[0]["rewards/prmkit_gym/mean"], sum(ref) / len(ref), abs_tol=1e-6)
    # and one optimiser step was taken
    assert trainer.state.global_step == 1
    changed = any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    assert changed or len(set(values)) == 1  # all-equal rewards give zero advantages (no update)
