"""The gym: generator knobs, the exact checker against a brute-force reference, the tokenizer."""

from __future__ import annotations

import operator
import random

import pytest

from prmkit.errors import InputError
from prmkit.gym.task import (GymConfig, GymGrader, first_error, is_well_formed, make_split, make_trace,
                             parse_prompt, sample_chain)


def brute_force_first_error(prompt: str, steps: list[str]) -> int:
    """Independent reference: rebuild the canonical solution text from the prompt string with the
    `operator` module and compare step strings one by one."""
    body = prompt[2:].strip().split(",")
    value, canonical = int(body[0]), []
    table = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}
    for tok in body[1:]:
        new = table[tok[0]](value, int(tok[1:]))
        canonical.append(f"{value}{tok}={new}")
        value = new
    canonical.append(f"A:{value}")
    for k, s in enumerate(steps):
        if k >= len(canonical) or s.strip() != canonical[k]:
            return k
    return -1 if len(steps) == len(canonical) else len(steps) - 1


def corrupt(steps: list[str], rng: random.Random) -> list[str]:
    steps = list(steps)
    kind = rng.randrange(6)
    k = rng.randrange(len(steps))
    s = steps[k]
    if kind == 0:  # change one character to a digit or operator
        i = rng.randrange(len(s))
        steps[k] = s[:i] + rng.choice("0123456789+-*") + s[i + 1:]
    elif kind == 1:  # wrong result
        head, _, tail = s.rpartition("=") if "=" in s else s.partition(":")
        steps[k] = f"{head}{'=' if '=' in s else ':'}{int(tail) + rng.choice([-2, -1, 1, 3])}"
    elif kind == 2 and k + 1 < len(steps):  # carry a wrong operand but compute correctly from it
        a = int(steps[k].split("=")[-1] if "=" in steps[k] else 0) + 1
        nxt = steps[k + 1]
        if "=" in nxt:
            op = next(ch for ch in nxt[1:] if ch in "+-*")
            b = int(nxt.split(op, 1)[1].split("=")[0])
            steps[k + 1] = f"{a}{op}{b}={operator.__dict__[{'+': 'add', '-': 'sub', '*': 'mul'}[op]](a, b)}"
    elif kind == 3:  # drop a step
        del steps[k]
    elif kind == 4:  # duplicate a step
        steps.insert(k, s)
    # kind 5: leave it right
    return steps or ["A:0"]


def test_checker_matches_brute_force_on_1000_traces():
    rng = random.Random(7)
    cfg = GymConfig(min_ops=1, max_ops=10)
    disagreements, kinds = 0, set()
    for _ in range(1000):
        chain = sample_chain(rng, cfg)
        steps = chain.solution_steps()
        for _ in range(rng.randrange(3)):
            try:
                steps = corrupt(steps, rng)
            except (ValueError, StopIteration):  # an earlier corruption left no number to shift
                pass
        fe = first_error(steps, parse_prompt(chain.prompt))
        kinds.add(fe >= 0)
        disagreements += fe != brute_force_first_error(chain.prompt, steps)
    assert kinds == {True, False}
    assert disagreements == 0


def test_first_error_by_hand():
    chain = parse_prompt("Q:7,+3,*2,-5\n")
    assert chain.solution_steps() == ["7+3=10", "10*2=20", "20-5=15", "A:15"]
    assert first_error(["7+3=10", "10*2=20", "20-5=15", "A:15"], chain) == -1
    assert first_error(["7+3=11", "10*2=20", "20-5=15", "A:15"], chain) == 0  # arithmetic slip
    assert first_error(["7+3=10", "11*2=22", "22-5=17", "A:17"], chain) == 1  # wrong operand, right math
    assert first_error(["7+3=10", "10*2=20", "20-5=15", "A:16"], chain) == 3  # wrong answer line
    assert first_error(["7+3=10", "10*2=20", "A:20"], chain) == 2  # skipped a step
    assert first_error(["7+3=10", "10*2=020", "20-5=15", "A:15"], chain) == 1  # non-canonical number


def test_right_answer_wrong_step_is_graded_right():
    p = make_split("test", 1)[0]
    chain = parse_prompt(p.prompt)
    steps = chain.solution_steps()
    steps[0] = steps[0].rsplit("=", 1)[0] + "=" + str(int(steps[0].rsplit("=", 1)[1]) + 1)  # slip, not carried
    t = make_trace(p, "\n".join(steps))
    assert t.outcome == 1.0 and t.first_error == 0


def test_generator_respects_knobs_and_seed():
    cfg = GymConfig(min_ops=3, max_ops=4, operand_max=5, max_value=30, ops="+-", seed=3)
    a = make_split("test", 50, min_ops=3, max_ops=4, operand_max=5, max_value=30, ops="+-", seed=3)
    b = make_split("test", 50, min_ops=3, max_ops=4, operand_max=5, max_value=30, ops="+-", seed=3)
    assert [p.prompt for p in a] == [p.prompt for p in b]
    rng = random.Random(cfg.seed)
    for _ in range(200):
        ch = sample_chain(rng, cfg)
        assert 3 <= len(ch.ops) <= 4
        assert all(op in "+-" and 1 <= b <= 5 for op, b in ch.ops)
        assert all(0 <= v <= 30 for v in ch.values())


def test_splits_lengths():
    assert all(6 <= p.meta["num_ops"] <= 10 for p in make_split("long", 100))
    assert all(2 <= p.meta["num_ops"] <= 5 for p in make_split("test", 100))


def test_grader_and_well_formed():
    g = GymGrader()
    assert g.extract_answer("1+2=3\nA:3") == "3" and g.is_correct("3", "3") and not g.is_correct(None, "3")
    assert is_well_formed(["1+2=3", "A:3"]) and not is_well_formed(["1+2=3", "1+"])


def test_bad_config_and_prompt():
    with pytest.raises(InputError, match="min_ops"):
        GymConfig(min_ops=5, max_ops=2)
    with pytest.raises(InputError, match="prompt"):
        parse_prompt("what is 2+2?")


def test_tokenizer_roundtrip_and_reload(char_tokenizer, tmp_path):
    from transformers import AutoTokenizer

    text = "Q:7,+3\n7+3=10\nA:10"
    ids = char_tokenizer(text)["input_ids"]
    assert len(ids) == len(text) + 1 and ids[0] == char_tokenizer.bos_token_id
    char_tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids
    assert again.decode(ids, skip_special_tokens=True) == text


def test_train_policy_is_reproducible_from_seed(tmp_path):
    from safetensors.torch import load_file

    from prmkit.gym.train_policy import TrainPolicyConfig, run

    outs = []
    for name in ("a", "b"):
        cfg = TrainPolicyConfig(out=str(tmp_path / name), steps=4, batch_size=4, warmup=2, hidden_size=16,
                                num_layers=1, num_heads=2, save_every=2)
        outs.append(load_file(str(run(cfg) / "model.safetensors")))
    assert outs[0].keys() == outs[1].keys()
    assert all((outs[0][k] == outs[1][k]).all() for k in outs[0])
