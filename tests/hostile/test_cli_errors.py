"""Careless and hostile CLI invocations (issue 18 items 6 and 8): every expected failure exits 2
with exactly one stderr line that names the file, field or model at fault, and no traceback; an
unexpected exception keeps its traceback and says it is a bug.

The cases run through `prmkit.cli.main`, the installed entry point (a few also as a subprocess of
`python -m prmkit.cli`), each with the cheapest invocation that reaches the failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prmkit.gym.task import make_split
from prmkit.resolve import default_policy
from prmkit.schema import to_dict

REPO = Path(__file__).resolve().parents[2]
GYM_PRM = REPO / "prmkit" / "gym" / "prm_checkpoint"


@pytest.fixture(autouse=True)
def quiet_loaders():
    """Model-loading progress bars also write to stderr; the one-line rule is about our output."""
    from transformers.utils import logging

    was = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    yield
    if was:
        logging.enable_progress_bar()


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def f(tmp_path_factory) -> dict[str, str]:
    """Every input file the cases use, by name."""
    d = tmp_path_factory.mktemp("hostile")
    problems = make_split("long", 3)
    p0 = problems[0]
    trace = {"problem_id": p0.id, "prompt": p0.prompt, "steps": ["5*6=30", "A:77"]}
    files = {
        "problems": _jsonl(d / "problems.jsonl", [to_dict(p) for p in problems]),
        "traces": _jsonl(d / "traces.jsonl", [trace]),
        "labelled": _jsonl(d / "labelled.jsonl", [{**trace, "labels": {"values": [1.0, 1.0], "method": "mc"}}]),
        "gold": _jsonl(d / "gold.jsonl", [{**trace, "first_error": 0, "outcome": 1.0}]),
        "labels_list": _jsonl(d / "labels_list.jsonl", [{**trace, "labels": [1.0, 0.0]}]),
        "labels_str": _jsonl(d / "labels_str.jsonl", [{**trace, "labels": "good"}]),
        "bad_task": _jsonl(d / "bad_task.jsonl", [{**to_dict(p0), "task": "nosuch"}]),
        "dup": _jsonl(d / "dup.jsonl", [to_dict(p) for p in problems] + [{**to_dict(p0), "answer": "78"}]),
        "empty": d / "empty.jsonl",
        "a_dir": d / "a_dir",
        "a_file": d / "a_file",
        "missing": d / "missing.jsonl",
        "missing_model": d / "no_such_model",
        "truncated_model": d / "truncated_model",
    }
    files["empty"].write_text("\n")  # one blank line: still no record
    (d / "not_utf8.jsonl").write_bytes(b"\n" + b'{"id": "caf\xe9"}\n')  # Latin-1 bytes on line 2
    files["not_utf8"] = d / "not_utf8.jsonl"
    files["a_dir"].mkdir()
    files["a_file"].write_text("x\n")
    files["truncated_model"].mkdir()
    for name in ("config.json", "prmkit_rm.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(GYM_PRM / name, files["truncated_model"] / name)
    whole = (GYM_PRM / "model.safetensors").read_bytes()
    (files["truncated_model"] / "model.safetensors").write_bytes(whole[: len(whole) // 3])
    out = {k: str(v) for k, v in files.items()}
    out["gym_policy"] = default_policy()
    out["tmp"] = str(d)
    return out


@pytest.fixture(scope="module")
def read_only_dir(tmp_path_factory):
    """A directory the user cannot write into: mode 0555, or (as root, whom modes do not stop) sysfs,
    which refuses new files to everyone."""
    d = tmp_path_factory.mktemp("ro")
    d.chmod(0o555)
    for candidate in (d, Path("/sys")):
        try:
            (candidate / "probe").touch()
        except PermissionError:
            yield candidate
            break
        (candidate / "probe").unlink()
    else:
        pytest.skip("no read-only directory on this machine (neither a 0555 directory nor /sys refuses writes)")
    d.chmod(0o755)


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    from prmkit.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    code = exc.value.code if isinstance(exc.value.code, int) else 1
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit 2, no traceback, and one error line, the last; any other line is a `note:` said before it
    (a gym default in use, say: nothing silent)."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: "), err
    assert all(line.startswith("note: ") for line in lines[:-1]), err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


# (case id, argv with {file} placeholders, what the line must name)
CASES = [
    # sample
    ("sample-missing-file", "sample --problems {missing} --out {tmp}/o", ["{missing}", "no such file"]),
    ("sample-not-utf8", "sample --problems {not_utf8} --out {tmp}/o", ["{not_utf8}", "line 2", "UTF-8"]),
    ("sample-dir-as-file", "sample --problems {a_dir} --out {tmp}/o", ["{a_dir}", "directory"]),
    ("sample-empty", "sample --problems {empty} --out {tmp}/o", ["{empty}", "no records", "--allow-empty"]),
    ("sample-missing-model", "sample --problems {problems} --model {missing_model} --out {tmp}/o",
     ["{missing_model}", "no such"]),
    ("sample-out-is-a-file", "sample --problems {problems} --num-problems 1 --n 1 --out {a_file}",
     ["{a_file}", "directory was expected"]),
    ("sample-unknown-task", "sample --problems {bad_task} --n 1 --max-new-tokens 4 --out {tmp}/o_task",
     ["task", "nosuch"]),
    # grade
    ("grade-labels-list", "grade --traces {labels_list} --problems {problems}", ["{labels_list}", "line 1", "'labels'", "list"]),
    ("grade-labels-str", "grade --traces {labels_str} --problems {problems}", ["{labels_str}", "line 1", "'labels'", "str"]),
    ("grade-empty-traces", "grade --traces {empty} --problems {problems}", ["{empty}", "no records"]),
    ("grade-empty-problems", "grade --traces {traces} --problems {empty}", ["{empty}", "no records"]),
    ("grade-unknown-task", "grade --traces {traces} --problems {problems} --task nosuch", ["'task'", "nosuch"]),
    ("grade-duplicate-id", "grade --traces {traces} --problems {dup}",
     ["{dup}", "line 4", "line 1", "gym-long-0", "answer", "--on-duplicate"]),
    ("grade-out-under-a-file", "grade --traces {traces} --problems {problems} --out {a_file}/g.jsonl", ["{a_file}"]),
    # label
    ("label-unknown-method", "label --method nosuch --traces {traces} --out {tmp}/l1", ["'method'", "nosuch"]),
    ("label-not-utf8", "label --method verify --traces {not_utf8} --out {tmp}/l2", ["{not_utf8}", "line 2"]),
    ("label-labels-str", "label --method verify --traces {labels_str} --out {tmp}/l3", ["{labels_str}", "'labels'"]),
    ("label-missing-model", "label --method mc --k 1 --traces {traces} --model {missing_model} --out {tmp}/l4",
     ["{missing_model}", "no such"]),
    # train prm
    ("train-empty-data", "train prm --data {empty} --model {gym_policy} --out {tmp}/t1", ["{empty}", "no records"]),
    ("train-dir-not-dataset", "train prm --data {a_dir} --model {gym_policy} --out {tmp}/t2", ["{a_dir}"]),
    ("train-missing-model", "train prm --data {labelled} --model {missing_model} --out {tmp}/t3",
     ["{missing_model}", "no such"]),
    ("train-out-is-a-file", "train prm --data {labelled} --model {gym_policy} --out {a_file}", ["{a_file}"]),
    # score
    ("score-truncated-safetensors", "score --traces {traces} --model {truncated_model} --out {tmp}/s1",
     ["{truncated_model}", "model.safetensors", "truncated"]),
    ("score-missing-model", "score --traces {traces} --model {missing_model} --out {tmp}/s2",
     ["{missing_model}", "no such"]),
    ("score-labels-list", "score --traces {labels_list} --model {truncated_model} --out {tmp}/s3",
     ["{labels_list}", "'labels'"]),
    # eval processbench
    ("eval-empty-data", "eval processbench --data {empty} --model {missing_model} --out {tmp}/e1", ["{empty}", "no records"]),
    ("eval-not-utf8", "eval processbench --data {not_utf8} --model {missing_model} --out {tmp}/e2",
     ["{not_utf8}", "line 2", "UTF-8"]),
    ("eval-missing-model", "eval processbench --data {gold} --model {missing_model} --out {tmp}/e3",
     ["{missing_model}", "no such"]),
    # search
    ("search-missing-file", "search --problems {missing} --out {tmp}/q1", ["{missing}", "no such file"]),
    ("search-unknown-method", "search --method nosuch --problems {problems} --out {tmp}/q2", ["'method'", "nosuch"]),
    ("search-missing-prm", "search --problems {problems} --prm {missing_model} --n 1 --out {tmp}/q3",
     ["{missing_model}", "no such"]),
    ("search-duplicate-id", "search --problems {dup} --n 1 --out {tmp}/q4", ["{dup}", "gym-long-0"]),
    # rl
    ("rl-not-utf8", "rl --problems {not_utf8} --steps 1 --out {tmp}/r1", ["{not_utf8}", "line 2"]),
    ("rl-unknown-reward", "rl --reward nosuch --problems {problems} --out {tmp}/r2", ["'reward'", "nosuch"]),
    ("rl-missing-model", "rl --problems {problems} --model {missing_model} --steps 1 --out {tmp}/r3",
     ["{missing_model}", "no such"]),
    ("rl-out-is-a-file", "rl --problems {problems} --steps 1 --out {a_file}", ["{a_file}"]),
    # convert
    ("convert-missing-file", "convert --input {missing} --source prmkit --target trl --output {tmp}/c1.jsonl", ["{missing}"]),
    ("convert-not-utf8", "convert --input {not_utf8} --source prmkit --target trl --output {tmp}/c2.jsonl",
     ["{not_utf8}", "UTF-8"]),
    ("convert-dir-as-file", "convert --input {a_dir} --source prmkit --target trl --output {tmp}/c3.jsonl", ["{a_dir}"]),
    ("convert-empty", "convert --input {empty} --source prmkit --target trl --output {tmp}/c4.jsonl", ["{empty}", "no records"]),
    ("convert-unknown-format", "convert --input {traces} --source nosuch --target trl --output {tmp}/c5.jsonl", ["nosuch"]),
    # command-line mistakes: one line too, naming the option and where --help is
    ("usage-unknown-option", "grade --no-such-option x", ["--no-such-option", "prmkit grade --help"]),
    ("usage-bad-int", "gym make --num-problems many", ["--num-problems", "prmkit gym make --help"]),
    ("usage-unknown-command", "trian prm", ["trian"]),
    # gym
    ("gym-unknown-split", "gym stats --split nosuch", ["'split'", "nosuch"]),
    ("gym-stats-missing-model", "gym stats --num-problems 1 --model {missing_model}", ["{missing_model}", "no such"]),
    ("gym-make-out-under-a-file", "gym make --num-problems 1 --out {a_file}/p.jsonl", ["{a_file}"]),
    # agent search
    ("agent-search-bad-flip-rate", "agent search --num-problems 1 --turn-rm checker:3 --out {tmp}/as1",
     ["'turn_rm'", "flip rate"]),
    ("agent-search-missing-model", "agent search --num-problems 1 --model {missing_model} --out {tmp}/as2",
     ["{missing_model}", "no such"]),
    ("agent-search-lookahead-best-of-n", "agent search --lookahead 2 --out {tmp}/as3", ["'lookahead'", "beam"]),
]


@pytest.mark.parametrize("argv, needles", [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_expected_failure_is_one_line(argv, needles, f, capsys):
    code, err = run_main(argv.format(**f).split(), capsys)
    assert_one_line_error(code, err, *(n.format(**f) for n in needles))


@pytest.mark.parametrize("argv", [
    "gym make --num-problems 1 --out {ro}/p.jsonl",
    "grade --traces {traces} --problems {problems} --out {ro}/g.jsonl",
    "sample --problems {problems} --num-problems 1 --n 1 --max-new-tokens 4 --out {ro}/run",
], ids=["gym-make", "grade", "sample"])
def test_read_only_output_location(argv, f, read_only_dir, capsys):
    code, err = run_main(argv.format(ro=read_only_dir, **f).split(), capsys)
    assert_one_line_error(code, err, str(read_only_dir), "ermission")


def test_help_and_a_finished_command_exit_0(f, tmp_path, capsys):
    """The boundary does not turn a command's return value into an exit code (gym make returns a path)."""
    code, _ = run_main(["grade", "--help"], capsys)
    assert code == 0
    code, err = run_main(["gym", "make", "--num-problems", "2", "--out", str(tmp_path / "p.jsonl")], capsys)
    assert code == 0, err
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2


def test_installed_entry_point_in_a_subprocess(f):
    """The same boundary as the console script runs it: a fresh interpreter, real stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PRMKIT_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for argv, needles in [
        (["grade", "--traces", f["labels_str"], "--problems", f["problems"]], [f["labels_str"], "'labels'"]),
        (["score", "--traces", f["traces"], "--model", f["missing_model"], "--out", f["tmp"] + "/sp"],
         [f["missing_model"]]),
    ]:
        res = subprocess.run([sys.executable, "-m", "prmkit.cli", *argv], capture_output=True, text=True,
                             env=env, cwd=REPO, timeout=120)
        assert_one_line_error(res.returncode, res.stderr, *needles)


def test_unexpected_exception_keeps_its_traceback_and_says_bug(monkeypatch, capsys):
    """A bug (here a ZeroDivisionError inside a command) is not dressed up as an input error."""
    import typer

    import prmkit.cli as cli

    broken = typer.Typer()

    @broken.command()
    def crash() -> None:
        print(1 / 0)

    monkeypatch.setattr(cli, "app", broken)
    code, err = run_main([], capsys)
    assert code == 1
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("error: unexpected ZeroDivisionError") and "bug" in err


# ---------------------------------------------------------------------------------------------
# item 8: duplicate ids and empty inputs are decisions the user makes, never silent


def _grade_accuracy(argv: list[str], capsys) -> tuple[float, str]:
    code, err = run_main(argv, capsys)
    assert code == 0, err
    return code, err


def test_duplicate_problem_id_needs_a_rule(f, tmp_path, capsys):
    """dup.jsonl gives gym-long-0 the answer 77 (line 1) and 78 (line 4). One trace answers 77."""
    trace = json.loads(Path(f["traces"]).read_text())
    trace["steps"] = ["A:77"]
    traces = _jsonl(tmp_path / "t.jsonl", [trace])
    for rule, expected in (("first", 1.0), ("last", 0.0)):  # by hand: 77 == 77; 77 != 78
        out = tmp_path / f"g_{rule}.jsonl"
        code, err = run_main(["grade", "--traces", str(traces), "--problems", f["dup"], "--on-duplicate", rule,
                              "--out", str(out)], capsys)
        assert code == 0, err
        assert "note:" in err and "--on-duplicate " + rule in err  # the choice is reported, not silent
        assert json.loads(out.read_text())["outcome"] == expected


def test_identical_duplicates_are_merged_with_a_notice(f, tmp_path, capsys):
    rows = [json.loads(line) for line in Path(f["problems"]).read_text().splitlines()]
    twice = _jsonl(tmp_path / "twice.jsonl", rows + rows[:2])
    out = tmp_path / "g.jsonl"
    code, err = run_main(["grade", "--traces", f["traces"], "--problems", str(twice), "--out", str(out)], capsys)
    assert code == 0, err
    assert "2 identical repeated problem id(s) merged" in err


def test_empty_input_only_with_allow_empty(f, tmp_path, capsys):
    code, err = run_main(["grade", "--traces", f["empty"], "--problems", f["problems"]], capsys)
    assert_one_line_error(code, err, f["empty"], "no records")
    out = tmp_path / "g.jsonl"
    code, err = run_main(["grade", "--traces", f["empty"], "--problems", f["problems"], "--allow-empty",
                          "--out", str(out)], capsys)
    assert code == 0, err
    assert out.read_text() == ""


def test_read_policy_is_restored_after_a_command(f, capsys):
    from prmkit.reading import ReadPolicy, read_policy

    run_main(["grade", "--traces", f["empty"], "--problems", f["problems"], "--allow-empty"], capsys)
    assert read_policy() == ReadPolicy()
