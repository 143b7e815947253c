"""Packed scoring (`set_packing`, `score --pack-tokens`): the row plan by hand, and packed scores equal the
padded path's on random-init models of the real families (classifier and LM-token readouts, chat
templates); a model that lets packed sequences see each other is refused before it scores."""

from __future__ import annotations

import json

import pytest
import torch

from prmkit.errors import InputError
from prmkit.lm.packing import Pack, pack_row, plan_packs
from prmkit.rewards.discriminative import DiscriminativePRM
from prmkit.steps import StepEncoding
from tests.conftest import build_bpe_tokenizer, build_qwen_chat_tokenizer
from tests.unit.test_rm_readout import _tiny

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["Janet sells 16 - 3 - 4 = 9 duck eggs.", "What is 2+1?", "She makes 9 * 2 = 18 every day at the market."]
STEPS = [["She makes 9 * 2 = 18.", "The answer is 18."], ["2+1=3", "The answer is 3."],
         ["Step 1: 16 - 3 = 13.", "Step 2: 13 - 4 = 9.", "So 9 * 2 = 18.", "The answer is 18."]]


def test_plan_packs_by_hand():
    # longest first, topped up with the shortest that fit: 8+2, 7+3, 5
    assert plan_packs([5, 3, 8, 2, 7], 10) == [Pack((2, 3), (0, 8), 10), Pack((4, 1), (0, 7), 10), Pack((0,), (0,), 5)]
    # 6 opens; the shortest fill it (the 1s, taken last-first), the row holds them longest first, ties in order
    assert plan_packs([1, 6, 1, 4, 1], 9) == [Pack((1, 0, 2, 4), (0, 6, 7, 8), 9), Pack((3,), (0,), 4)]
    # too long for a row: alone; everything else still placed once
    assert plan_packs([12, 1, 1], 10) == [Pack((0,), (0,), 12), Pack((1, 2), (0, 1), 2)]  # tie: input order opens
    assert plan_packs([], 10) == []
    with pytest.raises(ValueError):
        plan_packs([1], 0)


def test_a_row_planned_again_is_the_same_row():
    """What lets a Ray actor, handed one row's traces, pack them exactly as the whole call did."""
    import random

    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 30))]
        cap = rng.randint(1, 30)
        for pack in plan_packs(lengths, cap):
            again = plan_packs([lengths[m] for m in pack.members], cap)
            assert len(again) == 1 and again[0].members == tuple(range(len(pack.members)))
            assert again[0].offsets == pack.offsets


def test_pack_row_positions_restart_and_step_ends_shift():
    a = StepEncoding(input_ids=[1, 2, 3, 4], step_ends=[1, 3], prompt_len=1)
    b = StepEncoding(input_ids=[5, 6, 7], step_ends=[2], prompt_len=1)
    ids, pos, ends, spans = pack_row([a, b], Pack((1, 0), (0, 3), 7))
    assert ids.tolist() == [[5, 6, 7, 1, 2, 3, 4]]
    assert pos.tolist() == [[0, 1, 2, 0, 1, 2, 3]]
    assert ends.tolist() == [[2, 4, 6]] and spans == [(0, 1), (1, 3)]


def _many():
    # 12 traces of different lengths (prompt/steps combinations), so rows hold several traces
    prompts, steps = [], []
    for k in range(12):
        prompts.append(PROMPTS[k % 3] + " x" * (k % 5))
        steps.append(STEPS[(k + 1) % 3][: 1 + k % 4])
    return prompts, steps


@pytest.mark.parametrize("family", ["Qwen2ForTokenClassification", "LlamaForTokenClassification"])
@pytest.mark.parametrize("pack_tokens", [64, 4096])
def test_packed_scores_equal_padded(family, pack_tokens):
    tok = build_qwen_chat_tokenizer()
    rm = DiscriminativePRM(_tiny(family, tok, num_labels=2), tok, readout="trl", batch_size=4)
    prompts, steps = _many()
    padded = rm.score(prompts, steps)
    rm.set_packing(pack_tokens)
    packed = rm.score(prompts, steps)
    assert [len(s) for s in packed] == [len(s) for s in padded]
    for p, q in zip(packed, padded):
        assert p == pytest.approx(q, abs=1e-5)
    assert rm.stats.tokens_scored > 0


def test_packed_lm_token_readout_equals_padded():
    tok = build_bpe_tokenizer(special=["ки"])
    rm = DiscriminativePRM(_tiny("MistralForCausalLM", tok), tok, readout="math-shepherd")
    prompts, steps = _many()
    padded = rm.score(prompts, steps)
    rm.set_packing(128)
    for p, q in zip(rm.score(prompts, steps), padded):
        assert p == pytest.approx(q, abs=1e-5)


class _IgnoresPositions(torch.nn.Module):
    """A backbone whose attention ignores packed position ids (plain causal over the whole row)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kw):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kw)


def test_a_model_that_mixes_packed_sequences_is_refused():
    tok = build_qwen_chat_tokenizer()
    rm = DiscriminativePRM(_IgnoresPositions(_tiny("Qwen2ForTokenClassification", tok, num_labels=2)), tok)
    prompts, steps = _many()
    rm.set_packing(4096)
    rm.score(prompts[:1], steps[:1])          # one trace: nothing to pack with, so nothing checked yet
    with pytest.raises(InputError, match="does not keep packed sequences apart") as e:
        rm.score(prompts, steps)
    assert e.value.field == "pack_tokens"
    with pytest.raises(InputError):           # traces of one length are checked too
        rm.score([prompts[0]] * 2, [steps[0]] * 2)


def test_packing_refused_with_the_kv_cache():
    tok = build_qwen_chat_tokenizer()
    rm = DiscriminativePRM(_tiny("Qwen2ForTokenClassification", tok, num_labels=2), tok, kv_cache_tokens=1000)
    with pytest.raises(InputError, match="exclude each other"):
        rm.set_packing(256)


def test_score_cli_pack_tokens(tmp_path):
    from prmkit.schema import Trace, write_records
    from prmkit.score import ScoreConfig, run

    tok = build_qwen_chat_tokenizer()
    model_dir = tmp_path / "prm"
    DiscriminativePRM(_tiny("Qwen2ForTokenClassification", tok, num_labels=2), tok).save_pretrained(model_dir)
    prompts, steps = _many()
    traces = tmp_path / "traces.jsonl"
    write_records(traces, [Trace(f"p{i}", p, s) for i, (p, s) in enumerate(zip(prompts, steps))])
    got = {}
    for n in (0, 96):
        out = run(ScoreConfig(traces=str(traces), model=str(model_dir), out=str(tmp_path / f"run{n}"), pack_tokens=n))
        got[n] = [json.loads(line)["meta"]["rm"]["step_scores"] for line in (out / "scored.jsonl").open()]
    for p, q in zip(got[96], got[0]):
        assert p == pytest.approx(q, abs=1e-5)


def test_score_cli_pack_tokens_refused_for_a_checker_before_loading(tmp_path):
    from prmkit.schema import Trace, write_records
    from prmkit.score import ScoreConfig, check

    traces = tmp_path / "traces.jsonl"
    write_records(traces, [Trace("p0", "What is 2+1?", ["2+1=3"])])
    with pytest.raises(InputError, match="pack") as e:
        check(ScoreConfig(traces=str(traces), model="checker", pack_tokens=256))
    assert e.value.field == "pack_tokens"


def test_serve_pack_tokens_refused_for_the_checker():
    from prmkit.serve.reward_server import ServeConfig, run

    with pytest.raises(InputError, match="pack-tokens needs a local discriminative PRM") as e:
        run(ServeConfig(model="gym-checker", pack_tokens=256))
    assert e.value.field == "pack_tokens"


def test_served_packed_prm_scores_like_padded(tmp_path):
    """`prmkit serve --pack-tokens`: the app over a packing PRM answers what the padded model computes."""
    from fastapi.testclient import TestClient

    from prmkit.rewards.discriminative_packed import apply_packing
    from prmkit.serve.reward_server import create_app

    tok = build_qwen_chat_tokenizer()
    rm = DiscriminativePRM(_tiny("Qwen2ForTokenClassification", tok, num_labels=2), tok)
    prompts, steps = _many()
    padded = rm.score(prompts, steps)
    apply_packing(rm, 200)
    body = TestClient(create_app(rm)).post("/score", json={"prompts": prompts, "steps": steps}).json()
    assert len(body["results"]) == len(padded)
    for got, want in zip(body["results"], padded):
        assert got["step_scores"] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("saved,why", [({"kind": "implicit"}, "implicit PRM"),
                                       ({"kind": "prm", "loglik": {"lm": "loglik_lm"}}, "likelihood feature")])
def test_pack_tokens_refused_from_the_saved_config_before_loading(tmp_path, saved, why):
    """The dir holds only prmkit_rm.json (no weights): the refusal must come from the config, before any load."""
    from prmkit.schema import Trace, write_records
    from prmkit.score import ScoreConfig, check
    from prmkit.serve.reward_server import ServeConfig, run

    model_dir = tmp_path / "rm"
    model_dir.mkdir()
    (model_dir / "prmkit_rm.json").write_text(json.dumps(saved))
    traces = tmp_path / "traces.jsonl"
    write_records(traces, [Trace("p0", "What is 2+1?", ["2+1=3"])])
    for call in (lambda: check(ScoreConfig(traces=str(traces), model=str(model_dir), pack_tokens=256)),
                 lambda: run(ServeConfig(model=str(model_dir), pack_tokens=256))):
        with pytest.raises(InputError, match=why) as e:
            call()
        assert e.value.field == "pack_tokens" and e.value.file.endswith("prmkit_rm.json")


def test_pack_tokens_refused_for_the_shipped_gym_prm_before_loading(tmp_path):
    from prmkit.gym.task import make_split
    from prmkit.schema import Trace, write_records
    from prmkit.score import ScoreConfig, check

    p = make_split("test", 1)[0]
    traces = tmp_path / "traces.jsonl"
    write_records(traces, [Trace(p.id, p.prompt, ["1+1=2"])])
    with pytest.raises(InputError, match="likelihood feature"):
        check(ScoreConfig(traces=str(traces), model="gym", pack_tokens=256))
