"""Hostile step text: every checker answers "unknown" (or, for the exact gym checker, "wrong") within
2 s — never a crash, a hang or Python's int-digit limit — and invalid gym prompts are refused at the
boundary with an error naming the problem. Expected values come from plain Python arithmetic
(`int`, `Fraction`) or the brute-force gym reference, never from the checker under test."""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction

import pytest

from prmkit.errors import InputError
from prmkit.gym.task import MAX_DIGITS, check_prompts, first_error, parse_prompt, step_is_correct
from prmkit.label.equations import check_equation_text
from prmkit.label.verify import label_verify
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.schema import Problem, Trace
from prmkit.tasks import calculator
from prmkit.tasks.calculator import check_step, safe_eval
from tests.unit.test_gym import brute_force_first_error

HOSTILE_ANNOTATIONS = [
    "<<1e99999999=1>>",  # a 100-million-digit integer if expanded (was: label --method verify busy > 90 s)
    "<<1e999999=1>>",  # past Python's 4,300-digit str limit (was: the run died printing it)
    "<<1e-99999999=1>>",
    "<<1=1e999999>>",  # the annotated value
    "<<2=2>>2." + "0" * 5000,  # the written value
    "<<(9**100)**100=1>>",
    "<<" + "*".join(["9**100"] * 40) + "=1>>",  # 12,680 bits, reached through products
    "<<1/3=0." + "3" * 5000 + ">>",
    "<<1=" + "1" * 10 ** 7 + ">>",  # a 10 MB step
    "<<2=2>>" + "2" * 10 ** 7,
]


# A hostile input must come back (unknown or wrong) instead of hanging. The sympy deadline is
# MAX_SECONDS (1 s) of wall clock, checked on Python calls; on a loaded 2-core machine it has fired
# ~2.2 s late, so the bound leaves room for load while still catching a check that runs on unbounded.
HANG_BOUND_S = 10.0


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _short(step: str) -> str:
    return step if len(step) <= 40 else f"{step[:30]}...({len(step)} chars)"


@pytest.mark.parametrize("step", HOSTILE_ANNOTATIONS, ids=_short)
def test_calculator_hostile_annotation_is_unknown_not_a_hang(step):
    check, elapsed = _timed(check_step, step)
    assert check.ok is None and check.covered, check.reason
    assert elapsed < HANG_BOUND_S
    assert label_verify([Trace("p", "Q", [step])], checker="calculator")[0].labels.values == [None]


def test_calculator_bounds_are_exact_at_the_edge():
    """Values up to MAX_BITS bits are still checked exactly (reference: Python ints); one bit more,
    or one digit more in a literal, is unknown."""
    assert calculator.MAX_BITS == 10_000 and calculator.MAX_DIGITS == len(str(2 ** 10_000 - 1))
    top = "(2**100)**99*2**99"  # 2**9999: 10,000 bits
    assert safe_eval(top) == 2 ** 9999
    assert check_step(f"<<{top}-1={2 ** 9999 - 1}>>").ok is True
    assert check_step(f"<<{top}-1={2 ** 9999}>>").ok is False
    with pytest.raises(ValueError, match="bits"):
        safe_eval(top + "*2")  # 10,001 bits: refused by the product's bound
    assert check_step(f"<<{top}*2=1>>").ok is None
    assert safe_eval("1e3010") == 10 ** 3010
    with pytest.raises(ValueError, match="digits"):
        safe_eval("1e3011")


def test_calculator_wall_clock_bound(monkeypatch):
    monkeypatch.setattr(calculator, "MAX_SECONDS", -1.0)  # any walk is already late
    assert check_step("<<2+3=5>>").ok is None


# ---------------------------------------------------------------------------------------------
# sympy


@pytest.fixture(scope="module", autouse=True)
def _sympy_imported():
    check_equation_text("1 + 1 = 2")  # import sympy (about a second) outside the timed calls


@pytest.fixture(autouse=True)
def _fresh_sympy_cache():
    """sympy caches what a timed-out simplification computed, so a second try of the same step can finish
    inside the deadline (None, then False): each test starts from an empty cache."""
    from sympy.core.cache import clear_cache

    clear_cache()


# Within every size bound but slow: uncapped it takes 5.4 s on this 2-core machine (the ^20 version,
# 1.4 s here, was decided in 0.98 s on a faster machine, inside the 1 s deadline), so the deadline
# has several times its length to fire on any machine we know of.
SLOW_STEP = "(x^(1/2)+y^(1/3)+z^(1/5))^40 = x"


@pytest.mark.parametrize("step", [
    "((9**999)**999)**999 = 1",  # was: hangs (the power bound was checked per operation only)
    "9**(9**9) = 1",
    "(x+1)**1000 = 1",
    "(x+y+z)**60 = 1",
    "1e99999999 = 1",
    "x/0 = 1",
    "0**(-1) = 1",
    SLOW_STEP,  # within the size bounds but slow to simplify: the deadline stops it
    "2+2=" + "4" * 10 ** 7,  # a 10 MB step
    "x = " * 10 ** 6,
], ids=_short)
def test_sympy_hostile_step_is_unknown_not_a_hang(step):
    verdict, elapsed = _timed(check_equation_text, step)
    assert verdict is None
    assert elapsed < HANG_BOUND_S


def test_sympy_deadline_works_in_a_worker_thread():
    """A server scores in worker threads: the deadline (a per-thread profile hook) must work there too,
    and leave the thread's own profiler as it was. A quarter-second deadline: over 10x shorter than the
    step on the fastest machine seen."""
    got = {}

    def work():
        before = sys.getprofile()
        got["verdict"], got["elapsed"] = _timed(check_equation_text, SLOW_STEP, 0.25)
        got["restored"] = sys.getprofile() is before

    th = threading.Thread(target=work)
    th.start()
    th.join(2 * HANG_BOUND_S)
    assert got == {"verdict": None, "elapsed": got["elapsed"], "restored": True} and got["elapsed"] < HANG_BOUND_S


def test_a_stopped_check_leaves_nothing_cached():
    """A stopped check must not leave its partial work in sympy's caches (a second try of the same step
    could then finish inside the deadline: unknown, then False); a finished check keeps its cache."""
    from sympy.core.cache import CACHE

    def cached() -> int:
        return sum(f.cache_info().currsize for f in CACHE)

    assert check_equation_text("(x+1)**2 = x**2 + 2*x + 1") is True and cached() > 0
    assert check_equation_text(SLOW_STEP, 0.25) is None
    assert cached() == 0


def test_sympy_big_but_bounded_numbers_stay_exact():
    n = 3 ** 400  # reference: Python ints (191 digits: a side is at most 200 characters)
    assert check_equation_text(f"3**400 = {n}") is True
    assert check_equation_text(f"3**400 = {n + 1}") is False


@pytest.mark.parametrize("a,b,c,v", [(2, 3, 12, 18), (2, 3, 12, 17), (3, 4, 9, 12), (5, 2, 10, 4), (5, 2, 10, 5)])
def test_sympy_reads_an_equation_solved_in_the_step(a, b, c, v):
    """`a/b * x = c, so x = v` holds iff a/b * v == c (reference: Fraction); the chained form
    `x = c * b/a = v` is also checked link by link."""
    want = Fraction(a, b) * v == c
    assert check_equation_text(f"{a}/{b} * x = {c}, so x = {v}") is want
    assert check_equation_text(f"{a}/{b} * x = {c} => x = {v}") is want
    chain_ok = Fraction(c) * Fraction(b, a) == v
    assert check_equation_text(f"{a}/{b} * x = {c}, so x = {c} * {b}/{a} = {v}") is (chain_ok and want)


def test_sympy_chains_and_definitions_by_hand():
    assert check_equation_text("x = 12 * 3/2 = 18") is True  # the definition's chain is checked
    assert check_equation_text("x = 12 * 3/2 = 17") is False
    assert check_equation_text("Let x = 3. Then 2x + 1 = 7") is True
    assert check_equation_text("Let x = 3. Then 2x + 1 = 8") is False
    assert check_equation_text("x = 3 and x = 4, so x + 1 = 4") is None  # two values: x + 1 = 4 is a condition again
    assert check_equation_text("x = 3, so x + 1 = 5") is False
    assert check_equation_text("y = 2x + 1") is None  # a symbolic definition: nothing to check
    assert check_equation_text("We have 2/3 * x = 12.") is None  # a condition to solve, not a claim
    assert check_equation_text("3x = 12 = 4 * 3") is True  # the condition is skipped, 12 = 4*3 checked
    assert check_equation_text("3x = 12 = 4 * 4") is False
    assert check_equation_text("2(x + 1) = 2x + 3") is False  # variables on both sides: an identity claim


# ---------------------------------------------------------------------------------------------
# gym


def test_gym_step_of_5000_digits_is_wrong_not_a_hang():
    """The gym checker is exact: a step number longer than any true value cannot be right (the
    brute-force reference agrees) and is read without int()'s 4,300-digit limit."""
    chain = parse_prompt("Q:7,+3,*2\n")
    huge = "9" * 5000
    for k, step in [(0, f"{huge}+3=10"), (1, f"10*2={huge}"), (2, f"A:{huge}")]:
        ok, elapsed = _timed(step_is_correct, step, k, chain)
        assert ok is False and elapsed < HANG_BOUND_S
    steps = ["7+3=10", f"10*2={huge}", "A:20"]
    assert first_error(steps, chain) == brute_force_first_error("Q:7,+3,*2\n", steps) == 1
    assert GymCheckerRM().score(["Q:7,+3,*2\n"], [steps]) == [[1.0, 0.0, 0.0]]


@pytest.mark.parametrize("prompt,why", [
    ("Q:6,/0,+3\n", "divides by zero"),  # was: TypeError in apply_op, killing label and search
    ("Q:7,/2\n", "does not divide 7 exactly"),
    ("Q:" + "9" * (MAX_DIGITS + 1) + ",+1\n", "digits"),
    ("Q:9" + ",*" + "9" * 400 + ",*" + "9" * 400 + ",*" + "9" * 400 + "\n", "digits"),
])
def test_invalid_gym_prompt_is_refused(prompt, why):
    with pytest.raises(InputError, match=why):
        parse_prompt(prompt)
    with pytest.raises(InputError, match=why):
        GymCheckerRM().score([prompt], [["6/0=0"]])
    with pytest.raises(InputError, match=f"problem 'bad'.*{why}"):
        check_prompts([Problem("ok", "Q:7,+3\n", "10"), Problem("bad", prompt, "0")], "problems.jsonl")
    check_prompts([Problem("bad", prompt, "0", task="math")])  # not a gym problem: not the gym's to judge


def test_label_run_on_hostile_steps_and_prompts(tmp_path):
    """`prmkit label --method verify` (its run function, as the CLI calls it): hostile calculator
    steps come out unknown and the run finishes; a gym problem that divides by zero is refused
    before anything is written, naming the problem."""
    from prmkit.label.run import LabelConfig, run
    from prmkit.schema import read_traces, write_records

    write_records(tmp_path / "t.jsonl", [Trace("g", "Q", ["<<1e99999999=1>>", "<<1e999999=1>>", "<<2+3=5>>"])])
    (_, elapsed) = _timed(run, LabelConfig(method="verify", checker="calculator", traces=str(tmp_path / "t.jsonl"),
                                           out=str(tmp_path / "run")))
    assert read_traces(tmp_path / "run" / "labels.jsonl")[0].labels.values == [None, None, 1.0]
    assert elapsed < 10.0

    write_records(tmp_path / "p.jsonl", [Problem("z", "Q:6,/0,+3\n", "9")])
    write_records(tmp_path / "g.jsonl", [Trace("z", "Q:6,/0,+3\n", ["6/0=0", "0+3=3", "A:3"])])
    with pytest.raises(InputError, match="problem 'z'.*divides by zero") as e:
        run(LabelConfig(method="verify", traces=str(tmp_path / "g.jsonl"), problems=str(tmp_path / "p.jsonl"),
                        out=str(tmp_path / "bad")))
    assert "p.jsonl" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "bad").exists()


def test_gym_checker_on_a_trace_dividing_by_zero_names_the_trace():
    t = Trace("z", "Q:6,/0,+3\n", ["6/0=0", "0+3=3", "A:3"])
    with pytest.raises(InputError, match=r"trace 0 \(problem_id 'z'\), checker 'gym'.*divides by zero"):
        label_verify([t], checker="gym")
    assert label_verify([t])[0].labels.meta["checker"] != "gym"  # auto: not a gym prompt, so not the gym checker


def test_judge_and_verifier_parsers_read_5000_digit_step_numbers():
    """Model output naming a 5,000-digit step: no such step (unparsed), not int()'s digit-limit error."""
    from prmkit.label.judge import parse_verdict
    from prmkit.rewards.verdicts import parse_step_verdicts

    huge = "9" * 5000
    assert parse_verdict(f"The first error is in Step {huge}.", 4) is None
    assert parse_verdict("The first error is in Step 2.", 4) == 1
    assert parse_step_verdicts(f"Step {huge}: wrong \\boxed{{incorrect}}", 3) == [None, None, None]


def test_label_checker_sympy_marks_the_solved_equation_right():
    """The case reported against `label --checker sympy`: 2/3 * x = 12 solved as x = 18 (2/3 * 18 = 12)."""
    t = Trace("m", "Two thirds of a number is 12. What is it?",
              ["We have 2/3 * x = 12.", "So x = 12 * 3/2 = 18.", "Check: 2/3 * x = 12 with x = 18.", "So x = 17."])
    assert label_verify([t], checker="sympy")[0].labels.values == [None, 1.0, 1.0, None]
