"""GSM8K calculator-annotation checker: safe arithmetic, step checks, and the real test split."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prmkit.data import gsm8k_test_path
from prmkit.errors import InputError
from prmkit.tasks.calculator import check_solution, check_step, safe_eval, scan_file

GSM8K_TEST = gsm8k_test_path()  # vendored in the package (MIT licence beside it)


# ---------------------------------------------------------------------------------------------
# safe_eval


@pytest.mark.parametrize("expr, expected", [
    ("16-3-4", Fraction(9)),
    ("80000+50000", Fraction(130000)),
    ("80,000+50,000", Fraction(130000)),  # thousands commas
    ("80000*1.5", Fraction(120000)),
    ("5000*(2.5/100)", Fraction(125)),
    ("0.1+0.2", Fraction(3, 10)),  # exact decimals, no binary float error
    (".5*.5", Fraction(1, 4)),
    ("10/4", Fraction(5, 2)),
    ("10/3", Fraction(10, 3)),
    ("-48+21+(-3)", Fraction(-30)),
    ("-(3-5)*2", Fraction(4)),
    ("2**3", Fraction(8)),
    ("2**-2", Fraction(1, 4)),
    ("-2**2", Fraction(-4)),  # Python precedence: -(2**2)
    ("2*3+4*5", Fraction(26)),
    ("50%*10", Fraction(5)),  # a percentage is a hundredth
    ("$5*2", Fraction(10)),
    ("20.00-3.50", Fraction(33, 2)),
    ("007+1", Fraction(8)),  # leading zeros are harmless
])
def test_safe_eval_values(expr, expected):
    assert safe_eval(expr) == expected


@pytest.mark.parametrize("expr", [
    "__import__('os')",
    "__import__('os').system('true')",
    "x+1",
    "abs(-3)",
    "(1).real",
    "().__class__",
    "'a'*3",
    "[1, 2]",
    "1, 2",
    "1 if 1 else 2",
    "1 < 2",
    "lambda: 1",
    "2**10**10",  # 2**(10**10): far past the exponent limit, refused without computing it
    "(10**100)**100",  # result too large
    "4**0.5",  # irrational results are not supported
    "1/0",
    "0**-1",
    "3 // 2",
    "7 % 2",
    "",
    "1+",
    "(" * 300 + "1" + ")" * 300,
])
def test_safe_eval_refuses(expr):
    with pytest.raises(ValueError):
        safe_eval(expr)


def test_safe_eval_refusal_names_the_problem():
    with pytest.raises(ValueError, match="Call"):
        safe_eval("__import__('os')")
    with pytest.raises(ValueError, match="Name"):
        safe_eval("x+1")
    with pytest.raises(ValueError, match="exponent"):
        safe_eval("2**10**10")


# property test: random integer expression trees, evaluated independently by the test


def _trees(depth: int = 4):
    """(text, value) pairs: the text fully parenthesised, the value computed here with Fractions
    (None when a division by zero occurs anywhere)."""
    leaves = st.integers(min_value=0, max_value=999).map(lambda n: (str(n), Fraction(n)))

    def extend(children):
        binary = st.tuples(st.sampled_from("+-*/"), children, children).map(_combine)
        negate = children.map(lambda c: (f"-({c[0]})", None if c[1] is None else -c[1]))
        power = st.tuples(children, st.integers(min_value=0, max_value=3)).map(_power)
        return binary | negate | power

    return st.recursive(leaves, extend, max_leaves=12)


def _combine(args):
    op, (ltext, lval), (rtext, rval) = args
    text = f"({ltext}){op}({rtext})"
    if lval is None or rval is None or (op == "/" and rval == 0):
        return text, None
    value = {"+": lval + rval, "-": lval - rval, "*": lval * rval}.get(op)
    return text, value if op != "/" else lval / rval


def _power(args):
    (text, value), exponent = args
    return f"({text})**{exponent}", None if value is None else value ** exponent


@settings(max_examples=300, deadline=None)
@given(_trees())
def test_safe_eval_matches_independent_arithmetic(tree):
    text, value = tree
    if value is None:
        with pytest.raises(ValueError, match="division by zero"):
            safe_eval(text)
    else:
        assert safe_eval(text) == value


# ---------------------------------------------------------------------------------------------
# check_step on hand-made steps


def test_step_without_annotation_is_not_covered():
    check = check_step("First we find how many eggs are left.")
    assert (check.covered, check.ok, check.annotations) == (False, None, [])


def test_correct_step_passes_and_reports_its_annotation():
    check = check_step("The cost came to 80,000+50,000=$<<80000+50000=130000>>130,000")
    assert check.covered and check.ok is True
    (a,) = check.annotations
    assert (a.expr, a.annotated, a.evaluated, a.written) == ("80000+50000", "130000", 130000, "130,000")


@pytest.mark.parametrize("step, ok", [
    ("x <<2*3=7>>7 y", False),  # wrong arithmetic
    ("x <<2*3=6>>8 y", False),  # wrote a different value than the calculator gave
    ("x <<2*3=6>>$6.00 in all", True),
    ("x <<10/3=3.33>>3.33 each", True),  # rounded to the decimals written
    ("x <<10/3=3.3333>>3.33 each", True),
    ("x <<10/3=3.34>>3.34 each", False),  # not a rounding of 3.333...
    ("x <<10/3=3>>3 each", False),  # an annotated integer must be exact
    ("x <<1/2=0.5>>50% of them", True),  # a written percentage of the annotated fraction
    ("x <<0.5*100=50>>50% of them", True),
    ("x <<3/4=3/4>>3/4 of them", True),  # fractions as values
    ("x <<3/4=3/4>>3/4.", True),  # a sentence's full stop is not a decimal point
    ("x <<3/4=3/4>>3.", False),
    ("x <<-48+21+(-3)=-30>>-30 degrees", True),
    ("x <<5*.01=.05>>.05 dollars", True),
    ("x <<2+2=4>> apples", True),  # nothing written after >>: only the arithmetic is checked
    ("a <<1+1=2>>2 and b <<2+2=5>>5", False),  # one bad annotation flags the step
])
def test_check_step_cases(step, ok):
    assert check_step(step).ok is ok


def test_unevaluable_annotation_is_unchecked_not_flagged():
    check = check_step("x <<sqrt(16)=4>>4")
    assert check.covered and check.ok is None and "Call" in check.reason
    assert check_step("x <<sqrt(16)=4>>4 <<1+1=3>>3").ok is False


def test_check_solution_stops_at_the_final_line():
    answer = "a <<1+1=2>>2\n\nb <<2*2=4>>4 c\n#### 4"
    checks = check_solution(answer)
    assert [c.ok for c in checks] == [True, True]


# ---------------------------------------------------------------------------------------------
# the real GSM8K test split


def _answers() -> list[str]:
    return [json.loads(line)["answer"] for line in GSM8K_TEST.read_text().splitlines() if line.strip()]


def test_real_file_coverage_and_flags():
    report = scan_file(GSM8K_TEST)
    answers = _answers()
    lines = [ln for a in answers for ln in a.split("####")[0].split("\n") if ln.strip()]
    assert report["problems"] == len(answers) == 1319
    assert report["steps"] == len(lines)
    assert report["covered"] == sum("<<" in ln for ln in lines)
    assert report["covered"] == report["passed"] + report["flagged"] + report["unchecked"]
    for example in report["flagged_examples"] + report["unchecked_examples"]:
        print(example)
    print({k: v for k, v in report.items() if not k.endswith("_examples")})
    assert report["flagged"] <= 0.01 * report["covered"]
    assert report["unchecked"] <= 0.01 * report["covered"]


_WRITTEN = re.compile(r">>(-?)(\d[\d,]*(?:\.\d+)?|\.\d+)")
_ANNOTATION = re.compile(r"<<([^=<>]*)=([^<>]*)>>")


def _plus_one(number: str) -> str:
    return str(Decimal(number.replace(",", "")) + 1)


def _bump_annotated(line: str) -> str:
    m = _ANNOTATION.search(line)
    return line[:m.start(2)] + _plus_one(m.group(2)) + line[m.end(2):]


def _bump_written(line: str) -> str:
    m = _WRITTEN.search(line)
    return line[:m.start()] + ">>" + str(Decimal(m.group(1) + m.group(2).replace(",", "")) + 1) + line[m.end():]


def _swap_operator(line: str) -> str | None:
    """The line with one operator of its annotation changed so that the value changes (None if no
    swap of the first operator does)."""
    m = _ANNOTATION.search(line)
    expr = m.group(1)
    ops = [i for i, c in enumerate(expr) if c in "+-*/" and i > 0 and expr[i - 1] not in "+-*/("]
    if not ops:
        return None
    i = ops[0]
    for new in "+-*/":
        corrupted = expr[:i] + new + expr[i + 1:]
        try:
            if safe_eval(corrupted) != safe_eval(expr):
                return line[:m.start(1)] + corrupted + line[m.end(1):]
        except ValueError:
            continue
    return None


def test_corrupted_real_steps_are_flagged():
    covered = [ln for a in _answers() for ln in a.split("####")[0].split("\n") if "<<" in ln]
    sample = covered[::40]  # ~100 real steps spread over the file
    swapped = 0
    for line in sample:
        assert check_step(line).ok is True, line
        for corrupt in (_bump_annotated, _bump_written):
            bad = corrupt(line)
            assert check_step(bad).ok is False, (line, bad)
        bad = _swap_operator(line)
        if bad is not None:
            swapped += 1
            assert check_step(bad).ok is False, (line, bad)
    assert swapped >= 0.9 * len(sample)


def test_scan_file_names_a_bad_record(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "a <<1+1=2>>2\n#### 2"}) + "\n"
                    + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(InputError, match=r"line 2.*answer"):
        scan_file(path)


def test_scan_file_reports_flagged_examples(tmp_path):
    path = tmp_path / "mini.jsonl"
    rows = [{"answer": "a <<1+1=2>>2\nb <<2*3=7>>7\n#### 7"}, {"answer": "no tool here\n#### 1"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = scan_file(path)
    assert (report["problems"], report["steps"], report["covered"], report["flagged"]) == (2, 3, 2, 1)
    (example,) = report["flagged_examples"]
    assert example["index"] == 0 and example["step"] == "b <<2*3=7>>7" and "not 7" in example["reason"]
