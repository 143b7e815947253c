"""Each CLI command on the shipped gym policy, in seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from prmkit.cli import _register, app
from tests.conftest import GSM8K_TEST

_register()
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_help_comes_from_config_docstrings():
    out = invoke("gym", "stats", "--help")
    assert "--split" in out and "gym split" in out
    out = invoke("sample", "--help")
    assert "samples per problem" in out


def test_bool_options_switch_both_ways():
    """A bool field that defaults to True must be switchable off from the command line."""
    import dataclasses

    from prmkit.config import command_from_config

    @dataclasses.dataclass
    class Cfg:
        feature: bool = True
        """a switch on by default"""
        extra: bool = False
        """a switch off by default"""

    import typer

    seen = []
    one = typer.Typer()
    one.command()(command_from_config(Cfg, seen.append))
    for argv, want in ([[], (True, False)], [["--no-feature"], (False, False)], [["--feature", "--extra"], (True, True)],
                       [["--no-extra"], (True, False)]):
        result = runner.invoke(one, argv, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert (seen[-1].feature, seen[-1].extra) == want
    assert "--no-loglik-feature" in invoke("train", "prm", "--help")


def test_gym_make_sample_grade(tmp_path):
    invoke("gym", "make", "--out", str(tmp_path / "p.jsonl"), "--split", "long", "--num-problems", "5")
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(6 <= r["meta"]["num_ops"] <= 10 for r in rows)
    invoke("sample", "--problems", str(tmp_path / "p.jsonl"), "--n", "2", "--out", str(tmp_path / "s"))
    traces = [json.loads(line) for line in (tmp_path / "s" / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 10 and all(t["first_error"] is not None for t in traces)
    assert json.loads((tmp_path / "s" / "config.json").read_text())["n"] == 2
    out = invoke("grade", "--traces", str(tmp_path / "s" / "traces.jsonl"), "--problems", str(tmp_path / "p.jsonl"),
                 "--out", str(tmp_path / "g.jsonl"))
    expected = sum(t["outcome"] for t in traces) / len(traces)
    assert f"accuracy {expected:.4f}" in out


def test_gym_stats_json():
    out = invoke("gym", "stats", "--num-problems", "20", "--json")
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["num_traces"] == 20 and 0 <= stats["sampled_accuracy"] <= 1
    assert sum(stats["first_error_hist"].values()) + stats["all_steps_correct"] == 20


def test_convert_gsm8k_to_trl_like(tmp_path):
    src = tmp_path / "g.jsonl"
    src.write_text("".join(GSM8K_TEST.read_text().splitlines(keepends=True)[:3]))
    invoke("convert", "--input", str(src), "--source", "gsm8k", "--output", str(tmp_path / "t.jsonl"),
           "--target", "prmkit")
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["final_answer"] == "18" and len(rows[0]["steps"]) == 3
    assert rows[0]["steps"][-1] == "#### 18"  # the answer line stays the last step, as in sampled traces


def test_bad_input_exits_2_with_location(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "Q:1,+1\\n", "answer": "2"}\n{"id": "b", "prompt": 3}\n')
    proc = subprocess.run([sys.executable, "-m", "prmkit.cli", "sample", "--problems", str(bad), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "line 2" in proc.stderr
    assert not (tmp_path / "o" / "traces.jsonl").exists()


@pytest.mark.parametrize("split", ["test"])
def test_demo_small(tmp_path, split):
    invoke("demo", "--out", str(tmp_path / "demo"), "--num-problems", "16", "--samples", "2",
           "--gsm8k", str(GSM8K_TEST), "--stages", "none")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["gym_test"]["num_traces"] == 16 and results["gsm8k"]["records"] == 1319
    assert (tmp_path / "demo" / "report.html").read_text().count("<img") == 2


def test_demo_stages_resolve_to_callables():
    import importlib
    import inspect

    from prmkit.demo import STAGES

    assert list(STAGES) == ["label", "reward_models", "serve", "search", "rl"]
    for key, (_title, target) in STAGES.items():
        module_name, fn_name = target.split(":")
        fn = getattr(importlib.import_module(module_name), fn_name)
        assert list(inspect.signature(fn).parameters)[:2] == ["out_dir", "seed"], key


def test_python_dash_m_runs_the_same_cli():
    r = subprocess.run([sys.executable, "-m", "prmkit", "score", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "Usage: prmkit score" in r.stdout


def test_one_commands_help_loads_only_that_command():
    """`prmkit score --help` imports the score command alone (not torch, nor the other commands' modules), so
    it answers in a fraction of the time the whole registry takes; the full listing still has every command."""
    import subprocess
    import sys

    code = ("import sys\nfrom prmkit.cli import main\n"
            "try:\n    main(['score', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(sorted(m for m in ('torch', 'prmkit.rl.trainer', 'prmkit.agents.rl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--pack-tokens" in out.stdout and out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]
    full = subprocess.run([sys.executable, "-m", "prmkit", "--help"], capture_output=True, text=True, timeout=120)
    assert full.returncode == 0 and all(name in full.stdout for name in ("score", "search", "rl", "agent", "train"))
