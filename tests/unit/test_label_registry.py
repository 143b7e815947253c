"""The labelling-method registry: one signature, declared inputs, refusals at registration, and a
newly registered method running through `prmkit label` end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest

from prmkit.config import _choices_note
from prmkit.errors import InputError
from prmkit.label.config import LabelConfig
from prmkit.label.methods import get_labeller
from prmkit.label.registry import INPUTS, LABELLERS, labeller
from prmkit.label.rollouts import RolloutConfig
from prmkit.label.run import run
from prmkit.label.worker import Worker
from prmkit.schema import StepLabels, Trace, read_traces, write_records


@pytest.fixture
def scratch_method():
    """Register methods for one test and remove them afterwards."""
    before = set(LABELLERS)
    yield
    for name in set(LABELLERS) - before:
        del LABELLERS[name]


def test_builtin_methods_and_what_they_declare():
    builtin = ["mc", "omega", "scan", "verify", "judge", "consensus", "progress"]
    assert list(LABELLERS)[:len(builtin)] == builtin
    # the methods that sample from the --model policy (their prompt format is recorded), as before the registry
    assert {n for n in builtin if LABELLERS[n].uses_policy} == {"mc", "omega", "scan", "consensus", "progress"}
    assert LABELLERS["scan"].needs == ("sampler", "rollouts", "problems", "self_confidence")
    assert LABELLERS["progress"].needs == ("prover", "rollouts", "problems")
    assert LABELLERS["judge"].needs == ("judge",) and LABELLERS["verify"].settings == ("checker",)
    fields = {f.name for f in dataclasses.fields(LabelConfig)}
    for name, m in LABELLERS.items():
        assert set(m.needs) <= set(INPUTS), name
        assert set(m.settings) <= fields, name  # every setting is a --option of `prmkit label`
    # the --method help names every registered method
    assert _choices_note(LabelConfig, "method") == f" (one of: {', '.join(LABELLERS)})"  # --help lists them all


def test_unknown_method_is_refused_naming_the_known_ones():
    with pytest.raises(InputError, match="unknown method 'nope'; expected one of mc, omega, scan, verify, judge"):
        get_labeller("nope")


def test_registration_refuses_a_signature_that_does_not_match_its_declaration(scratch_method):
    with pytest.raises(ValueError, match="registered twice"):
        labeller("mc")(lambda items: [])
    with pytest.raises(ValueError, match="unknown inputs"):
        labeller("x1", needs=("gpu",))(lambda items, *, gpu: [])
    with pytest.raises(ValueError, match="first parameter must be `items`"):
        labeller("x2")(lambda traces: [])
    with pytest.raises(ValueError, match="declared needs"):  # takes an input it did not declare
        labeller("x3", needs=("problems",))(lambda items, *, problems, sampler: [])
    with pytest.raises(ValueError, match="declared needs"):  # declares an input it does not take
        labeller("x4", needs=("problems", "judge"))(lambda items, *, problems: [])
    assert not {"x1", "x2", "x3", "x4"} & set(LABELLERS)


def test_worker_passes_declared_inputs_and_config_settings(scratch_method):
    seen = {}

    @labeller("probe_inputs", needs=("rollouts", "problems", "self_confidence"))
    def probe_inputs(items, *, rollouts, problems, self_confidence, k, batch_size, eps):
        seen.update(rollouts=rollouts, problems=problems, sc=self_confidence, k=k, batch_size=batch_size, eps=eps)
        return [t for _, t in items]

    cfg = LabelConfig(method="probe_inputs", traces="t.jsonl", k=3, max_new_tokens=17, temperature=0.5, seed=9,
                      sep="\n\n", batch_size=0, eps=0.25)
    w = Worker(cfg, problems={"p": "P"}, sc_map={"p": 0.5})
    t = Trace(problem_id="p", prompt="Q", steps=["a", "b"])
    assert w.label_traces([(4, t)]) == [t]
    assert seen == {"rollouts": RolloutConfig(k=3, max_new_tokens=17, temperature=0.5, seed=9, sep="\n\n"),
                    "problems": {"p": "P"}, "sc": {"p": 0.5}, "k": 3, "batch_size": 1, "eps": 0.25}
    assert w.load() is w and w._models == {}  # it declared no model, so none is loaded


def test_a_method_returning_the_wrong_number_of_traces_is_a_bug(scratch_method):
    labeller("drops_one")(lambda items: [t for _, t in items][1:])
    w = Worker(LabelConfig(method="drops_one", traces="t.jsonl"), None)
    t = Trace(problem_id="p", prompt="Q", steps=["a"])
    with pytest.raises(RuntimeError, match="returned 1 traces for 2"):
        w.label_traces([(0, t), (1, t)])


def test_a_new_method_runs_through_prmkit_label(tmp_path, scratch_method):
    """A decorated function is all `prmkit label --method NAME` needs: it is validated, resumable
    and writes what the function returns."""
    @labeller("halves", needs=("problems",))
    def halves(items, *, problems, k):
        # step i of trace j gets (i + j + k) % 2 / 2: a rule that depends on the global index j
        return [dataclasses.replace(t, labels=StepLabels(values=[(i + j + k) % 2 / 2 for i in range(len(t.steps))],
                                                           method="halves", meta={"problems": problems is not None}))
                for j, t in items]

    traces = [Trace(problem_id=f"p{j}", prompt=f"Q:{j}\n", steps=["x"] * (j + 1)) for j in range(5)]
    src = tmp_path / "traces.jsonl"
    write_records(src, traces)
    out = tmp_path / "run"
    run(LabelConfig(method="halves", traces=str(src), out=str(out), k=3, chunk=2))
    got = read_traces(out / "labels.jsonl")
    assert [t.labels.values for t in got] == [[0.5], [0.0, 0.5], [0.5, 0.0, 0.5], [0.0, 0.5, 0.0, 0.5],
                                              [0.5, 0.0, 0.5, 0.0, 0.5]]
    assert all(t.labels.method == "halves" and t.labels.meta == {"problems": False} for t in got)
    assert not (out / "prompt_format.json").exists()  # it samples from no policy
    cost = json.loads((out / "cost.json").read_text())
    assert cost["method"] == "halves" and cost["labelled"] == 5
