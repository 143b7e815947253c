"""LoRA for prm, orm and implicit on tiny random-init Qwen2 and Llama backbones: the head trains in full,
adapters everywhere else, the frozen weights stay bit-identical, the merged save equals W + (alpha/r)·B·A
computed by hand, and scoring the saved dir gives the in-memory scores."""

from __future__ import annotations

import pytest
import torch

from prmkit.rewards import load_reward_model
from prmkit.schema import StepLabels, Trace, write_records
from prmkit.train.lora import adapter_targets, head_modules
from tests.conftest import build_bpe_tokenizer

PROMPT = "Janet sells 16 - 3 - 4 = 9 duck eggs."
STEPS = [["She makes 9 * 2 = 18.", "The answer is 18."], ["She makes 9 * 2 = 19.", "The answer is 19."]]


@pytest.fixture(scope="module")
def tok():
    return build_bpe_tokenizer()


def _save_backbone(arch: str, tok, path):
    import transformers

    cfg = getattr(transformers, f"{arch}Config")(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    getattr(transformers, f"{arch}ForCausalLM")(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _traces(path):
    traces = [Trace(problem_id=f"p{i}", prompt=PROMPT, steps=s, outcome=float(i == 0),
                    labels=StepLabels(values=[1.0, 1.0] if i == 0 else [0.0, 0.0], method="test"))
              for i, s in enumerate(STEPS)] * 2
    write_records(path, traces)
    return str(path)


@pytest.mark.parametrize("arch", ["Qwen2", "Llama"])
def test_head_and_targets_by_hand(arch, tok):
    import transformers

    cfg = getattr(transformers, f"{arch}Config")(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                                 num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                                 num_labels=2)
    cls = getattr(transformers, f"{arch}ForTokenClassification")(cfg)
    assert head_modules(cls) == ["score"]
    expect = [f"model.layers.0.{m}" for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                               "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    assert sorted(adapter_targets(cls, ["score"])) == sorted(expect)
    lm = getattr(transformers, f"{arch}ForCausalLM")(cfg)
    assert head_modules(lm) == []                                   # the LM head is not a new head
    assert sorted(adapter_targets(lm, [])) == sorted(expect)        # ... and gets no adapter


def _snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", ["Qwen2", "Llama"])
def test_prm_lora_trains_head_in_full_and_reloads(arch, tok, tmp_path):
    from prmkit.train.loop import LoopSettings, train_loop
    from prmkit.train.prm import TrainPRMConfig, apply_lora, fit_and_save, load_backbone, n_known, step_examples, step_loss_fn

    base = _save_backbone(arch, tok, tmp_path / "base")
    rm = load_backbone(base, "trl", "\n", "prm", 0, "min")
    before = _snapshot(rm.model)
    apply_lora(rm, 4, 8)
    traces = [Trace(problem_id="a", prompt=PROMPT, steps=s, labels=StepLabels(values=v, method="t"))
              for s, v in zip(STEPS, ([1.0, 1.0], [0.0, 0.0]))]
    examples = step_examples(rm, traces, lambda t, i: list(t.labels.values))
    s = LoopSettings(out=tmp_path / "run", epochs=3, batch_size=2, lr=1e-2, save_every=0)
    train_loop(rm.trainable(), examples, step_loss_fn(rm), s, items=n_known)
    trained = {n: p.detach().clone() for n, p in rm.model.named_parameters()}
    # frozen base weights: bit-identical; the head: every entry moved (trained in full)
    q = "base_model.model.model.layers.0.self_attn.q_proj"
    assert torch.equal(trained[f"{q}.base_layer.weight"], before["model.layers.0.self_attn.q_proj.weight"])
    head = trained["base_model.model.score.modules_to_save.default.weight"]
    assert (head != before["score.weight"]).all()
    assert not torch.equal(trained[f"{q}.lora_B.default.weight"], torch.zeros_like(trained[f"{q}.lora_B.default.weight"]))
    in_memory = rm.score([PROMPT] * 2, STEPS)
    cfg = TrainPRMConfig(out=str(tmp_path / "prm"), fit_split="")
    out = fit_and_save(rm, cfg, {}, tmp_path / "prm", None, 0.0)
    # merged weight = W0 + (alpha / r) * B @ A, by hand from the trained adapter
    merged = rm.model.state_dict()["model.layers.0.self_attn.q_proj.weight"]
    by_hand = before["model.layers.0.self_attn.q_proj.weight"] + (8 / 4) * (
        trained[f"{q}.lora_B.default.weight"] @ trained[f"{q}.lora_A.default.weight"])
    assert torch.allclose(merged, by_hand, atol=1e-6)
    reloaded = load_reward_model(out)
    got = reloaded.score([PROMPT] * 2, STEPS)
    assert [x for r in got for x in r] == pytest.approx([x for r in in_memory for x in r], abs=1e-5)
    assert not (out / "adapter_config.json").exists()               # a plain HF dir: merged, not an adapter


def _run_cli(*args):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app

    _register()
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("kind,arch", [("prm", "Qwen2"), ("orm", "Llama"), ("implicit", "Qwen2"), ("implicit", "Llama")])
def test_train_cli_with_lora(kind, arch, tok, tmp_path):
    base = _save_backbone(arch, tok, tmp_path / "base")
    data = _traces(tmp_path / "traces.jsonl")
    out = tmp_path / kind
    extra = ["--no-loglik-feature"] if kind == "prm" else []
    _run_cli("train", kind, "--data", data, "--model", base, "--out", str(out), "--lora-r", "4", "--epochs", "2",
             "--batch-size", "2", "--lr", "1e-2", "--fit-split", "", "--threads", "1", "--gradient-checkpointing", *extra)
    rm = load_reward_model(out)
    assert rm.kind == kind
    scores = rm.score([PROMPT] * 2, STEPS)
    assert [len(s) for s in scores] == [2, 2]
    if kind == "implicit":
        from transformers import AutoModelForCausalLM

        base_lm = AutoModelForCausalLM.from_pretrained(base)
        assert torch.equal(rm.model.get_output_embeddings().weight, base_lm.get_output_embeddings().weight)
        moved = [n for n, p in rm.model.named_parameters()
                 if not torch.equal(p, dict(base_lm.named_parameters())[n])]
        assert any("q_proj" in n for n in moved)                    # adapters merged into the attention
