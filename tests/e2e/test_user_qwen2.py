"""A user's own model and data, end to end through the real CLI: a tiny random-init Qwen2 saved with
`save_pretrained`, a byte-level BPE tokenizer with Qwen2's ChatML chat template, GSM8K problems.

sample -> grade -> label (mc, verify) -> train prm (full, LoRA) -> score -> eval processbench ->
search (best_of_n, beam) -> serve + one request -> rl (grpo, 2 steps), all with the chat template.
Every model input is recorded (PRMKIT_INPUT_LOG: the text decoded from the ids the model ran on)
and checked against the chat text written out by hand below, the same at every stage; every weight
and tokenizer load is traced to check that nothing of the gym was loaded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import GSM8K_TEST, build_qwen_chat_tokenizer, build_tiny_qwen2

SYSTEM = "Please reason step by step."
TEMPLATE = "Question: {problem}"
CHAT = ["--chat-template", "--system-prompt", SYSTEM, "--prompt-template", TEMPLATE, "--stop", "<|im_end|>"]
NUM_PROBLEMS = 3


def chat_text(question: str) -> str:
    """Qwen2's ChatML layout of one system + one user turn and the generation prompt, by hand."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nQuestion: {question}<|im_end|>\n"
            "<|im_start|>assistant\n")


def gsm8k_lines(n: int) -> list[dict]:
    return [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()[:n]]


def gold_traces(problems: list[dict]) -> list[dict]:
    """Each problem's reference solution (first_error -1) and a copy whose first step is wrong (first_error 0)."""
    rows = gsm8k_lines(len(problems))
    out = []
    for p, r in zip(problems, rows):
        steps = [s for s in r["answer"].split("\n") if s.strip() and not s.startswith("####")]
        steps.append(f"The answer is {p['answer']}.")
        for first_error, ss in ((-1, steps), (0, ["So 1 + 1 = 3."] + steps[1:])):
            out.append({"schema_version": 1, "kind": "trace", "problem_id": p["id"], "prompt": p["prompt"],
                        "steps": ss, "final_answer": p["answer"], "outcome": float(first_error == -1),
                        "first_error": first_error, "labels": None, "meta": {}})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class Inputs:
    """The model inputs one stage recorded: (role, problem index, the text after the chat head)."""

    def __init__(self, path: Path, questions: list[str]):
        self.rows = []
        heads = [chat_text(q) for q in questions]
        for line in (path.read_text().splitlines() if path.exists() else []):
            rec = json.loads(line)
            match = [i for i, h in enumerate(heads) if rec["text"].startswith(h)]
            assert len(match) == 1, f"a model saw a text that is not one problem's chat prompt: {rec['text'][:300]!r}"
            self.rows.append((rec["role"], match[0], rec["text"][len(heads[match[0]]):]))
        path.unlink(missing_ok=True)

    def of(self, role: str) -> list[tuple[int, str]]:
        return [(i, rest) for r, i, rest in self.rows if r == role]


def trl_text(steps: list[str]) -> str:
    """The trl readout's text after the prompt: each step followed by the separator."""
    return "".join(s + "\n" for s in steps)


@pytest.fixture()
def loads(monkeypatch):
    """Every model/tokenizer load (path) and every gym component built during the test."""
    from transformers import PreTrainedModel
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    import prmkit.gym.task as gym_task
    from prmkit.gym.checker_rm import GymCheckerRM

    seen: dict[str, list] = {"models": [], "tokenizers": [], "gym": []}
    for cls, key in ((PreTrainedModel, "models"), (PreTrainedTokenizerBase, "tokenizers")):
        orig = cls.from_pretrained.__func__

        def traced(c, path, *a, _orig=orig, _key=key, **kw):
            seen[_key].append(str(path))
            return _orig(c, path, *a, **kw)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(traced))
    make_split, checker_init = gym_task.make_split, GymCheckerRM.__init__
    monkeypatch.setattr(gym_task, "make_split", lambda *a, **k: seen["gym"].append("make_split") or make_split(*a, **k))
    monkeypatch.setattr(GymCheckerRM, "__init__",
                        lambda self, *a, **k: seen["gym"].append("GymCheckerRM") or checker_init(self, *a, **k))
    return seen


def _serve_and_score(prm: Path, log: Path, question: str, steps: list[str]) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "prmkit.cli", "serve", "--model", str(prm), "--port", str(port)],
                            env={**os.environ, "PRMKIT_QUIET": "1", "PRMKIT_INPUT_LOG": str(log)})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                health = httpx.get(f"{url}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            raise RuntimeError("prmkit serve did not start")
        r = httpx.post(f"{url}/score", json={"problems": [question], "steps": [steps]}, timeout=60)
        assert r.status_code == 200, r.text
        return {"health": health, "score": r.json()}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_user_qwen2_end_to_end(tmp_path, monkeypatch, loads):
    from prmkit.cli import _register, app
    from prmkit.schema import read_traces

    _register()
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    tok = build_qwen_chat_tokenizer()
    model_dir = tmp_path / "qwen-tiny"
    build_tiny_qwen2(tok).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    # problems made by the converter from GSM8K's own lines (question, answer after '####', task gsm8k)
    raw = write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_lines(NUM_PROBLEMS))
    pfile = tmp_path / "problems.jsonl"
    cli("convert", "--input", raw, "--source", "gsm8k", "--target", "problems", "--output", pfile)
    problems = [json.loads(line) for line in pfile.read_text().splitlines()]
    assert [(p["prompt"], p["answer"], p["task"]) for p in problems] == [
        (r["question"], r["answer"].split("####")[-1].strip(), "gsm8k") for r in gsm8k_lines(NUM_PROBLEMS)]
    questions = [p["prompt"] for p in problems]
    gold = write_jsonl(tmp_path / "gold.jsonl", gold_traces(problems))
    log = tmp_path / "inputs.jsonl"
    monkeypatch.setenv("PRMKIT_INPUT_LOG", str(log))
    expected_format = {"template": TEMPLATE, "chat_template": True, "system_prompt": SYSTEM, "stop": ["<|im_end|>"],
                       "solution_prefix": ""}

    # sample: the policy reads exactly each problem's chat prompt, once per problem
    cli("sample", "--problems", pfile, "--model", model_dir, "--n", 2, "--max-new-tokens", 12, "--seed", 3,
        "--out", tmp_path / "s", *CHAT)
    seen = Inputs(log, questions)
    assert sorted(seen.of("policy")) == [(i, "") for i in range(NUM_PROBLEMS)]
    assert json.loads((tmp_path / "s" / "prompt_format.json").read_text()) == expected_format
    traces = read_traces(tmp_path / "s" / "traces.jsonl")
    assert [t.prompt for t in traces] == [q for q in questions for _ in range(2)]  # files keep the raw problem

    cli("grade", "--traces", tmp_path / "s" / "traces.jsonl", "--problems", pfile, "--out", tmp_path / "graded.jsonl")
    assert Inputs(log, questions).rows == []

    # label mc: every rollout continues a chat prompt followed by a step prefix of that problem's trace
    cli("label", "--method", "mc", "--traces", tmp_path / "graded.jsonl", "--problems", pfile, "--model", model_dir,
        "--k", 2, "--max-new-tokens", 6, "--out", tmp_path / "mc", *CHAT)
    rollouts = Inputs(log, questions).of("policy")
    prefixes = {(questions.index(t.prompt), "".join(s + "\n" for s in t.steps[:k])) for t in traces
                for k in range(len(t.steps) + 1)}
    assert rollouts and set(rollouts) <= prefixes
    cli("label", "--method", "verify", "--traces", tmp_path / "graded.jsonl", "--problems", pfile,
        "--out", tmp_path / "verify")
    assert Inputs(log, questions).rows == []  # a tool, no model

    # train prm (full, then LoRA): the PRM reads chat prompt + steps, and keeps the format in its dir
    mc = tmp_path / "mc" / "labels.jsonl"
    labelled = read_traces(mc)
    for name, extra in (("prm", []), ("prm-lora", ["--lora-r", 8])):
        cli("train", "prm", "--data", mc, "--model", model_dir, "--out", tmp_path / name, "--epochs", 1,
            "--batch-size", 4, "--no-loglik-feature", "--fit-data", gold, *extra, *CHAT)
        fed = Inputs(log, questions).of("reward_model")
        assert {(questions.index(t.prompt), trl_text(t.steps)) for t in labelled} <= set(fed)
        assert set(fed) <= {(questions.index(t.prompt), trl_text(t.steps)) for t in labelled + read_traces(gold)}
        assert json.loads((tmp_path / name / "prompt_format.json").read_text()) == expected_format
    prm = tmp_path / "prm"

    # score and eval processbench: the format comes from the model dir (no prompt options given)
    cli("score", "--traces", tmp_path / "graded.jsonl", "--model", prm, "--out", tmp_path / "score")
    assert sorted(Inputs(log, questions).of("reward_model")) == sorted(
        (questions.index(t.prompt), trl_text(t.steps)) for t in traces)
    cli("eval", "processbench", "--model", prm, "--data", gold, "--out", tmp_path / "pb")
    assert sorted(Inputs(log, questions).of("reward_model")) == sorted(
        (questions.index(t.prompt), trl_text(t.steps)) for t in read_traces(gold))
    assert json.loads((tmp_path / "pb" / "processbench.json").read_text())
    for run in ("score", "pb"):  # each run dir records the format its model read with
        assert json.loads((tmp_path / run / "prompt_format.json").read_text()) == expected_format

    # search: the policy continues chat prompts (+ committed steps); the PRM scores chat prompt + steps
    for method in ("best_of_n", "beam"):
        cli("search", "--method", method, "--problems", pfile, "--model", model_dir, "--prm", prm, "--n", 2,
            "--beam-width", 2, "--max-steps", 2, "--max-step-tokens", 6, "--max-new-tokens", 10,
            "--out", tmp_path / f"search-{method}", *CHAT)
        seen = Inputs(log, questions)
        policy = seen.of("policy")
        assert {i for i, _ in policy} == set(range(NUM_PROBLEMS)) and seen.of("reward_model")
        assert json.loads((tmp_path / f"search-{method}" / "prompt_format.json").read_text()) == expected_format
        if method == "best_of_n":
            assert sorted(policy) == [(i, "") for i in range(NUM_PROBLEMS)]
        else:
            assert all(rest == "" or rest.endswith("\n") for _, rest in policy)

    # serve + one request: the served PRM renders the raw problem with its saved format
    steps = ["She eats 3 and bakes 4.", "16 - 3 - 4 = 9 eggs are sold.", "The answer is 18."]
    served = _serve_and_score(prm, log, questions[0], steps)
    assert len(served["score"]["results"][0]["step_scores"]) == 3
    assert set(Inputs(log, questions).of("reward_model")) == {(0, trl_text(steps))}  # (its size check encodes too)

    # rl (grpo, 2 steps): rollouts and held-out evaluation read the chat prompts; the policy keeps the format
    cli("rl", "--reward", "grpo", "--model", model_dir, "--problems", pfile, "--eval-problems-file", pfile,
        "--eval-problems", 2, "--steps", 2, "--prompts-per-step", 2, "--k", 2, "--minibatch", 4,
        "--max-new-tokens", 8, "--no-tensorboard", "--out", tmp_path / "rl", *CHAT)
    policy = Inputs(log, questions).of("policy")
    assert policy and all(rest == "" for _, rest in policy)
    assert json.loads((tmp_path / "rl" / "policy" / "prompt_format.json").read_text()) == expected_format

    # nothing of the gym: every load is one of the user's dirs, and no gym problem or checker was made
    user_dirs = {str(model_dir), str(prm), str(tmp_path / "prm-lora")}
    assert loads["models"] and set(loads["models"]) <= user_dirs, loads["models"]
    assert set(loads["tokenizers"]) <= user_dirs, loads["tokenizers"]
    assert loads["gym"] == []
    assert served["health"].get("model", "") != "gym-checker"
