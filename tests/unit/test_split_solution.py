"""Named step-split modes for raw solution text: blank lines with a single-newline fallback, lines,
regexes and "Step k:" markers; exposed as --step-split on sample and grade (gym unchanged)."""

from __future__ import annotations

import pytest

from prmkit.errors import InputError
from prmkit.steps import split_solution, split_steps


@pytest.mark.parametrize("text, expected", [
    ("A\n\nB\nb2\n\n\nC", ["A", "B\nb2", "C"]),                  # blank lines separate; a line break stays
    ("\n\n  A\n\nB  \n\n", ["A", "B"]),                            # leading/trailing blank lines: no step
    ("A\n \t\nB", ["A", "B"]),                                     # a blank line holding spaces
    ("A\nB\nC\n", ["A", "B", "C"]),                                # no blank line: split on lines
    ("\n\nA\nB\n\n", ["A", "B"]),                                  # only edge blank lines: still lines
    ("A\r\n\r\nB\r\nb2", ["A", "B\nb2"]),                          # CRLF
    ("A\rB", ["A", "B"]),                                          # old Mac CR
    ("", []), ("\n\n\n", []),
])
def test_double_newline(text, expected):
    assert split_solution(text) == expected == split_solution(text, "double_newline")


def test_newline_and_regex():
    assert split_solution("A\n\nB\r\nC  \n", "newline") == ["A", "B", "C"]
    assert split_solution("1. x 2. y 3. z", r"regex:\s(?=\d+\.)") == ["1. x", "2. y", "3. z"]
    assert split_solution("a;b;;c", "regex:;") == ["a", "b", "c"]
    for bad, why in [("regex:(a)", "capturing"), ("regex:[", "invalid"), ("regex:", "expected a pattern"),
                     ("lines", "unknown step-split mode")]:
        with pytest.raises(InputError, match=why):
            split_solution("a", bad)


def test_step_markers():
    text = ("Let me think.\nStep 1: x = 2, as in Step 1: of the hint\n\nStep 2. y = x + 1\n"
            "## Step 3: so y = 3\n**Step 4:** done\nstep 5: check")
    assert split_solution(text, "step_markers") == [
        "Let me think.",                                           # text before the first marker
        "Step 1: x = 2, as in Step 1: of the hint",                # "Step 1:" mid-line does not split
        "Step 2. y = x + 1", "## Step 3: so y = 3", "**Step 4:** done", "step 5: check"]
    assert split_solution("Step 1: a\r\nb\r\nStep 2: c", "step_markers") == ["Step 1: a\nb", "Step 2: c"]
    assert split_solution("no markers\n\nat all", "step_markers") == ["no markers", "at all"]  # double_newline
    assert split_solution("Steps 1: no\nStep one: no", "step_markers") == ["Steps 1: no", "Step one: no"]


def test_split_steps_is_unchanged():
    assert split_steps("a\n\nb\n") == ["a", "b"] and split_steps(" a \n b", "\n") == [" a ", " b"]


def test_sample_splits_non_gym_completions_by_mode():
    from prmkit.policy.base import Completion
    from prmkit.policy.sample import completion_to_trace
    from prmkit.schema import Problem

    text = "Step 1: 2 + 3 = 5\nso five\nStep 2: The answer is 5."
    c = Completion(text=text, token_ids=[], logprobs=[], steps=split_steps(text), finish_reason="stop")
    p = Problem(id="p", prompt="2+3?", answer="5", task="gsm8k")
    assert completion_to_trace(p, c, 0).steps == ["Step 1: 2 + 3 = 5", "so five", "Step 2: The answer is 5."]
    t = completion_to_trace(p, c, 0, "step_markers")
    assert t.steps == ["Step 1: 2 + 3 = 5\nso five", "Step 2: The answer is 5."] and t.outcome == 1.0
    gym = Problem(id="g", prompt="Q:1,+2\n", answer="3", task="gym")
    gc = Completion(text="1+2=3\nA:3", token_ids=[], logprobs=[], steps=["1+2=3", "A:3"], finish_reason="stop")
    assert completion_to_trace(gym, gc, 0, "regex:=").steps == ["1+2=3", "A:3"]  # the gym's own steps


def test_grade_step_split(tmp_path, capsys):
    from prmkit.grade import GradeConfig, run
    from prmkit.schema import Problem, StepLabels, Trace, read_traces, write_records

    write_records(tmp_path / "p.jsonl", [Problem(id="p", prompt="q", answer="7", task="gsm8k")])
    blob = Trace(problem_id="p", prompt="q", steps=["First 3 + 4.\n\nThat is 7.\n\n#### 7"])
    write_records(tmp_path / "t.jsonl", [blob])
    run(GradeConfig(traces=str(tmp_path / "t.jsonl"), problems=str(tmp_path / "p.jsonl"),
                    out=str(tmp_path / "g.jsonl"), step_split="double_newline"))
    (t,) = read_traces(tmp_path / "g.jsonl")
    assert t.steps == ["First 3 + 4.", "That is 7.", "#### 7"] and t.outcome == 1.0
    run(GradeConfig(traces=str(tmp_path / "t.jsonl"), problems=str(tmp_path / "p.jsonl"),
                    out=str(tmp_path / "g0.jsonl")))
    assert read_traces(tmp_path / "g0.jsonl")[0].steps == blob.steps          # default: steps kept
    with pytest.raises(InputError, match="unknown step-split mode"):
        run(GradeConfig(traces=str(tmp_path / "t.jsonl"), problems=str(tmp_path / "p.jsonl"), step_split="para"))
    labelled = Trace(problem_id="p", prompt="q", steps=["a\n\nb"], labels=StepLabels(values=[1.0], method="mc"))
    write_records(tmp_path / "l.jsonl", [labelled])
    with pytest.raises(InputError, match="step labels"):
        run(GradeConfig(traces=str(tmp_path / "l.jsonl"), problems=str(tmp_path / "p.jsonl"),
                        out=str(tmp_path / "never.jsonl"), step_split="double_newline"))
    assert not (tmp_path / "never.jsonl").exists()


def test_step_split_option_on_the_commands(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import prmkit.sample as sample
    from prmkit.cli import _register, app

    _register()
    for cmd in ("sample", "grade"):
        res = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and "--step-split" in res.stdout
    monkeypatch.setattr(sample, "make_sampler", lambda *a, **k: pytest.fail("a model loaded before the check"))
    with pytest.raises(InputError, match="capturing"):
        sample.run(sample.SampleConfig(out=str(tmp_path / "s"), step_split="regex:(x)"))


def test_trl_adapter_step_split():
    from prmkit.serve.trl_adapter import TRLRewardFunction

    class Recorder:  # a reward model that scores every step 1 and keeps what it was given
        aggregation = "mean"

        def score(self, prompts, steps):
            self.seen = steps
            return [[1.0] * len(s) for s in steps]

    rm = Recorder()
    TRLRewardFunction(rm)(["q"], ["a\n\nb\nc"])
    assert rm.seen == [["a", "b", "c"]]                                       # default: split on "\n"
    TRLRewardFunction(rm, step_split="double_newline")(["q"], ["a\n\nb\nc"])
    assert rm.seen == [["a", "b\nc"]]
    with pytest.raises(InputError, match="unknown step-split mode"):
        TRLRewardFunction(rm, step_split="paragraphs")
