"""Bad options and inputs fail before any model loads, in under 5 s, naming what to pass: every
`from_pretrained` is made to raise, so a check that comes too late fails the test with "model loaded".
A good input gets past every check to the first model load (the same trap), and `train prm --fit-data`
with a ProcessBench JSON array trains and stores the threshold fitted on it."""

from __future__ import annotations

import json
import threading
import time

import pytest
from typer.testing import CliRunner

from prmkit.cli import _register, app
from prmkit.errors import InputError
from prmkit.schema import Problem, StepLabels, Trace, write_records
from tests.conftest import build_bpe_tokenizer

_register()
PROMPT = "Janet sells 16 - 3 - 4 = 9 duck eggs. How much does she make at $2 each?"


class ModelLoaded(AssertionError):
    pass


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny Qwen2 backbone, non-gym labelled traces, GSM8K-like problems and ProcessBench files."""
    import torch
    import transformers

    d = tmp_path_factory.mktemp("early")
    tok = build_bpe_tokenizer()
    cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(d / "qwen")
    tok.save_pretrained(d / "qwen")
    good, bad = ["She makes 9 * 2 = 18.", "The answer is 18."], ["She makes 9 * 2 = 19.", "The answer is 19."]
    traces = [Trace(problem_id=f"p{i}", prompt=PROMPT, steps=s, outcome=float(s is good),
                    first_error=-1 if s is good else 0,
                    labels=StepLabels(values=[1.0, 1.0] if s is good else [0.0, 0.0], method="test"))
              for i, s in enumerate([good, bad, good, bad])]
    write_records(d / "traces.jsonl", traces)
    write_records(d / "nolabels.jsonl", [Trace(problem_id="p", prompt=PROMPT, steps=good)])
    write_records(d / "problems.jsonl", [Problem(id="p0", prompt=PROMPT, answer="18", task="gsm8k")])
    (d / "notask.jsonl").write_text(json.dumps({"id": "p0", "prompt": PROMPT, "answer": "18"}) + "\n")
    pb = [{"id": f"gsm8k-{i}", "generator": "test", "problem": PROMPT, "steps": s,
           "final_answer_correct": s is good, "label": -1 if s is good else 0}
          for i, s in enumerate([good, bad, good, bad])]
    (d / "pb.json").write_text(json.dumps(pb))
    (d / "pb_bad.json").write_text(json.dumps([{**pb[0], "label": "first"}]))
    return d


@pytest.fixture
def no_models(monkeypatch):
    """Every model / tokenizer load raises ModelLoaded."""
    import transformers

    def trap(*a, **k):
        raise ModelLoaded("model loaded")

    for name in ("AutoModel", "AutoModelForCausalLM", "AutoModelForTokenClassification", "AutoTokenizer",
                 "AutoConfig"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", trap)
    monkeypatch.delenv("PRMKIT_RM_TOKEN", raising=False)


def _fails(*args, match: str, field: str | None = None):
    t = time.perf_counter()
    res = CliRunner().invoke(app, list(args))
    took = time.perf_counter() - t
    assert isinstance(res.exception, InputError), (res.exception, res.output)
    assert took < 5.0, took
    assert match in str(res.exception), str(res.exception)
    if field is not None:
        assert res.exception.field == field
    return res.exception


def _reaches_model_load(*args):
    """Every check passed: the command got to its first model load (the trap)."""
    t = time.perf_counter()
    res = CliRunner().invoke(app, list(args))
    assert isinstance(res.exception, ModelLoaded), (res.exception, res.output)
    assert time.perf_counter() - t < 5.0


TRAIN = ("--epochs", "1", "--batch-size", "2", "--threads", "1")


def test_train_options_fail_before_any_model_loads(files, tmp_path, no_models):
    d, out = files, str(tmp_path / "prm")
    data, model = str(d / "traces.jsonl"), str(d / "qwen")
    _fails("train", "prm", "--data", data, "--model", model, "--out", out, *TRAIN, match="--fit-data",
           field="fit_data")                                                     # non-gym data: no gym dev fit
    _fails("train", "prm", "--data", data, "--out", out, "--fit-split", "", *TRAIN, match="pass --model",
           field="model")                                                        # ... and no gym policy
    _fails("train", "prm", "--data", data, "--model", str(d / "missing"), "--out", out, "--fit-split", "", *TRAIN,
           match="no such directory", field="model")
    _fails("train", "prm", "--data", str(d / "nope.jsonl"), "--model", model, "--out", out, match="no such file",
           field="data")
    _fails("train", "prm", "--data", str(d / "nolabels.jsonl"), "--model", model, "--out", out, "--fit-split", "",
           match="expected step labels", field="labels")
    _fails("train", "prm", "--data", data, "--model", model, "--out", out, "--fit-data", str(d / "pb_bad.json"),
           *TRAIN, match="label")                                                # a bad ProcessBench fit file
    _fails("train", "prm", "--data", data, "--model", model, "--out", out, "--fit-data", str(d / "nope.json"),
           *TRAIN, match="no such file", field="fit_data")
    _fails("train", "orm", "--data", data, "--model", model, "--out", out, "--fit-data", str(d / "nolabels.jsonl"),
           *TRAIN, match="gold first error", field="first_error")
    _fails("train", "implicit", "--data", data, "--model", model, "--ref-model", "./missing-ref", "--out", out,
           "--fit-split", "", *TRAIN, match="no such directory", field="ref_model")
    _fails("train", "prm", "--data", data, "--model", model, "--out", out, "--fit-split", "", "--lora-r", "-1",
           *TRAIN, match="LoRA rank", field="lora_r")
    _fails("train", "orm", "--data", data, "--model", model, "--out", out, "--fit-split", "", "--overflow", "wrap",
           *TRAIN, match="truncate", field="overflow")
    assert not (tmp_path / "prm").exists()                                       # nothing written either
    _reaches_model_load("train", "prm", "--data", data, "--model", model, "--out", out, "--fit-data",
                        str(d / "pb.json"), *TRAIN)


def test_search_rl_score_eval_fail_before_any_model_loads(files, tmp_path, no_models, monkeypatch):
    d, model = files, str(files / "qwen")
    problems = str(d / "problems.jsonl")
    _fails("search", "--problems", problems, "--model", model, "--out", str(tmp_path / "s"), match="pass --prm",
           field="prm")                                                          # no gym PRM on GSM8K problems
    _fails("search", "--problems", str(d / "notask.jsonl"), "--model", model, "--prm", model, match="task",
           field="task")
    _fails("search", "--problems", problems, "--model", model, "--prm", "./no-prm", match="no such directory")
    _fails("search", "--problems", problems, "--model", model, "--prm", model, "--flip-rate", "0.1",
           match="gym checker only", field="flip_rate")                          # never silently ignored
    _fails("rl", "--reward", "pure", "--problems", problems, "--eval-problems-file", problems, "--model", model,
           "--out", str(tmp_path / "rl"), match="pass --prm", field="prm")
    _fails("rl", "--reward", "grpo", "--problems", problems, "--model", model, "--out", str(tmp_path / "rl"),
           match="--eval-problems-file")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)                                                  # runs/ exists, runs/prm does not
    _fails("score", "--traces", str(d / "traces.jsonl"), "--model", "runs/prm", match="no such directory")
    _fails("score", "--traces", str(d / "traces.jsonl"), match="pass --model", field="model")
    _fails("eval", "processbench", "--data", str(d / "pb.json"), "--model", model, "--fit-data",
           str(d / "pb_bad.json"), match="label")
    _fails("sample", "--problems", problems, "--out", str(tmp_path / "smp"), match="pass --model", field="model")
    _fails("label", "--method", "mc", "--traces", str(d / "traces.jsonl"), "--out", str(tmp_path / "lab"),
           match="pass --model", field="model")                                  # no gym policy rolling out GSM8K
    _fails("serve", "--model", "./no-such-prm", match="no such directory", field="model")
    _reaches_model_load("search", "--problems", problems, "--model", model, "--prm", model, "--out",
                        str(tmp_path / "s"))
    _reaches_model_load("label", "--method", "mc", "--traces", str(d / "traces.jsonl"), "--model", model,
                        "--out", str(tmp_path / "lab"))


def test_remote_prm_needing_a_token_fails_before_the_policy_loads(files, tmp_path, no_models, monkeypatch):
    import socket

    import uvicorn

    from prmkit.gym.checker_rm import GymCheckerRM
    from prmkit.serve.reward_server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(GymCheckerRM(), token="sekret"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.02)
    url, problems = f"http://127.0.0.1:{port}", str(files / "problems.jsonl")
    args = ("rl", "--reward", "pure", "--problems", problems, "--eval-problems-file", problems,
            "--model", str(files / "qwen"), "--prm", url, "--out", str(tmp_path / "rl"))
    try:
        _fails(*args, match="--prm-token", field="prm_token")
        _fails("search", "--problems", problems, "--model", str(files / "qwen"), "--prm", url, match="PRMKIT_RM_TOKEN")
        _reaches_model_load(*args, "--prm-token", "sekret")
        monkeypatch.setenv("PRMKIT_RM_TOKEN", "sekret")
        _reaches_model_load(*args)
    finally:
        server.should_exit = True
        th.join(10)


def test_fit_data_as_processbench_array_trains_and_stores_the_threshold(files, tmp_path):
    from prmkit.evaluate.processbench import fit_model_threshold, read_eval_traces
    from prmkit.rewards import load_reward_model

    out = tmp_path / "prm"
    res = CliRunner().invoke(app, ["train", "prm", "--data", str(files / "traces.jsonl"), "--model",
                                   str(files / "qwen"), "--fit-data", str(files / "pb.json"), "--out", str(out),
                                   *TRAIN], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "prmkit_rm.json").read_text())
    fit = saved["meta"]["threshold_fit"]
    assert fit["traces"] == 4 and fit["source"] == str(files / "pb.json")
    assert "loglik" not in saved                                                 # off by default on user data
    rm = load_reward_model(out)
    threshold = rm.threshold
    refit = fit_model_threshold(rm, read_eval_traces(str(files / "pb.json")), source="again")
    assert threshold == pytest.approx(refit["threshold"])                        # fitted on pb.json, not gym dev


def test_likelihood_lm_path_survives_a_move_and_another_directory(files, tmp_path, monkeypatch):
    """`--loglik-feature --model models/qwen` (typed relative): the saved dir names the LM absolutely, so it
    scores the same from another directory after being moved (it used to store 'models/qwen' as typed)."""
    import shutil

    from prmkit.rewards import load_reward_model

    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    shutil.copytree(files / "qwen", work / "models" / "qwen")
    monkeypatch.chdir(work)
    res = CliRunner().invoke(app, ["train", "prm", "--data", str(files / "traces.jsonl"), "--model", "models/qwen",
                                   "--loglik-feature", "--fit-split", "", "--out", "prm", *TRAIN],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    saved = json.loads((work / "prm" / "prmkit_rm.json").read_text())
    assert saved["loglik"]["lm"] == str((work / "models" / "qwen").resolve())
    before = load_reward_model("prm").score([PROMPT], [["She makes 9 * 2 = 18.", "The answer is 18."]])
    shutil.move(str(work / "prm"), str(tmp_path / "moved"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    after = load_reward_model(str(tmp_path / "moved")).score([PROMPT], [["She makes 9 * 2 = 18.", "The answer is 18."]])
    assert after == before


def test_score_and_processbench_take_any_spec_the_resolver_reads(tmp_path):
    """`score`/`eval processbench` accept the checker (and so any spec), not only a model dir."""
    from dataclasses import replace

    from prmkit.gym.task import make_split, make_trace, parse_prompt
    from prmkit.schema import read_traces

    traces = []
    for p in make_split("dev", 3):
        sol = parse_prompt(p.prompt).solution_steps()
        bad = [sol[0][:-1] + str((int(sol[0][-1]) + 1) % 10)] + sol[1:]
        traces += [make_trace(p, "\n".join(sol)), make_trace(p, "\n".join(bad))]
    write_records(tmp_path / "t.jsonl", [replace(t) for t in traces])
    res = CliRunner().invoke(app, ["score", "--traces", str(tmp_path / "t.jsonl"), "--model", "checker",
                                   "--out", str(tmp_path / "s")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    scored = read_traces(tmp_path / "s" / "scored.jsonl")
    assert [t.meta["rm"]["step_scores"][0] for t in scored] == [1.0, 0.0] * 3     # the first step: right, wrong
    res = CliRunner().invoke(app, ["eval", "processbench", "--data", str(tmp_path / "t.jsonl"), "--model", "checker",
                                   "--out", str(tmp_path / "e")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e" / "processbench.json").read_text())["f1"] == 1.0   # the exact checker
