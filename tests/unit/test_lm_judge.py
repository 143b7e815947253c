"""The LM judge of agent turns: the parser on real-looking replies, verdicts and precision/recall against
the gym's `useful` worked by hand with a sampler returning fixed texts, a tiny random-init model whose
replies are unparsed (counted and said), and agent RL taking its verdicts."""

from __future__ import annotations

import pytest
import torch

from prmkit.agents.env import Episode, Turn
from prmkit.agents.lm_judge import judge_agreement, judge_prompt, judge_report, lm_verdicts, parse_verdict
from prmkit.errors import InputError
from prmkit.policy.base import Completion, SamplerStats
from tests.conftest import build_bpe_tokenizer, build_tiny_qwen2
from tests.smoke.test_agent_rl import tiny_agent  # noqa: F401  (fixture)


def episode(useful: list[bool], pid: str = "p") -> Episode:
    turns = [Turn(f"S:K{k}1 ceo", f"O:K{k}1 ceo P12", gold={"useful": u}) for k, u in enumerate(useful)]
    return Episode(pid, "Q:age(ceo(K31))\n", turns, True)


class FixedSampler:
    """A Sampler that replies with the given texts in order (the judge under test is the parsing around it)."""

    sep = "\n"

    def __init__(self, texts):
        self.texts, self.stats, self.prompts = list(texts), SamplerStats(), []

    def sample(self, prompts, params, seeds=None):
        self.prompts += list(prompts)
        return [[Completion(self.texts.pop(0), [], [], [], "stop")] for _ in prompts]


@pytest.mark.parametrize("text,n,mode,want", [
    ("Critical: 1, 3", 3, "critical", [1, 0, 1]),
    ("**Critical:** 2 and 3.\nBecause turn 2 reveals the CEO.", 3, "critical", [0, 1, 1]),
    ("Looking at the turns...\nCritical turns: 2", 2, "critical", [0, 1]),
    ("Critical: none", 2, "critical", [0, 0]),
    ("Subgoals: 1", 2, "subgoal", [1, 0]),
    ("Turn 1: 3 (essential)\nTurn 2: 0\nTurn 3: 2", 3, "importance", [1, 0, 2 / 3]),
    ("- Turn 1 - 1\n- Turn 2 - 3", 2, "importance", [1 / 3, 1]),
])
def test_parse_real_looking_replies(text, n, mode, want):
    assert parse_verdict(text, n, mode) == pytest.approx(want)


@pytest.mark.parametrize("text,n,mode", [
    ("I think turn 2 matters most.", 2, "critical"),  # no answer line
    ("Critical: 4", 3, "critical"),  # a turn that does not exist
    ("Critical:", 2, "critical"),
    ("Turn 1: 3", 2, "importance"),  # turn 2 unrated
    ("Turn 1: 5\nTurn 2: 1", 2, "importance"),  # out of the 0-3 scale
])
def test_unreadable_replies_are_none(text, n, mode):
    assert parse_verdict(text, n, mode) is None


def test_prompt_shows_question_and_turns():
    p = judge_prompt(episode([True, False]), "critical")
    assert "Question: Q:age(ceo(K31))" in p and "Turn 2: action 'S:K11 ceo', observation 'O:K11 ceo P12'" in p
    assert p.rstrip().endswith("'Critical: none'.")
    with pytest.raises(InputError, match="judge mode"):
        judge_prompt(episode([True]), "nope")


def test_verdicts_and_precision_recall_by_hand(capsys):
    eps = [episode([True, False, True]), episode([False, True]), episode([True, True])]
    sampler = FixedSampler(["Critical: 1, 2", "Critical: 2", "no idea"])
    v = lm_verdicts(sampler, eps, "critical")
    assert v.parsed == [True, True, False] and v.unparsed == 1
    assert v.values.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert "1 of 3 replies unparsed" in capsys.readouterr().err
    assert "Question:" in sampler.prompts[0]
    agree = judge_agreement(v, eps)
    # parsed turns: ep0 said {1,2} gold {1,3}: tp 1, fp 1, fn 1; ep1 said {2} gold {2}: tp 1
    assert agree == {"precision": 2 / 3, "recall": 2 / 3, "tp": 2, "fp": 1, "fn": 1, "parsed": 2, "unparsed": 1}
    report = judge_report(FixedSampler(["Critical: none"]), [episode([True])])
    assert report["precision"] is None and report["recall"] == 0.0 and report["mode"] == "critical"


def test_tiny_random_model_replies_are_counted_unparsed(capsys):
    from prmkit.policy.hf import HFSampler

    tok = build_bpe_tokenizer()
    sampler = HFSampler(build_tiny_qwen2(tok), tok)
    eps = [episode([True, False]), episode([False])]
    v = lm_verdicts(sampler, eps, "importance", max_new_tokens=8)
    assert v.unparsed == sum(parse_verdict(r, len(e.turns), "importance") is None for r, e in zip(v.replies, eps))
    assert v.unparsed == 2 and torch.equal(v.values, torch.zeros(2, 2))
    assert "2 of 2 replies unparsed" in capsys.readouterr().err
    assert judge_agreement(v, eps)["parsed"] == 0


def test_agent_rl_with_an_lm_judge(tmp_path, tiny_agent):  # noqa: F811
    from prmkit.agents.rl import AgentRLConfig, run

    tok = build_bpe_tokenizer()
    judge_dir = tmp_path / "judge"
    build_tiny_qwen2(tok).save_pretrained(judge_dir)
    tok.save_pretrained(judge_dir)
    for method in ("attributed", "calm"):
        records = run(AgentRLConfig(out=str(tmp_path / method), method=method, model=tiny_agent,
                                    judge_model=str(judge_dir), steps=2, prompts_per_step=2, k=2, max_turns=3,
                                    max_action_tokens=8, eval_problems=2, eval_every=0, minibatch=2))
        steps = [r for r in records if "loss" in r]
        assert [r["step"] for r in steps] == [1, 2]
        assert all(r["judge/unparsed"] == 4 for r in steps)  # a random judge: every reply unparsed, and said
