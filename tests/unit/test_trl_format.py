"""Our TRL export, loaded with `datasets`, has exactly TRL's documented stepwise-supervision columns
and feature types: prompt (string), completions (list of strings), labels (list of bools).

Reference: TRL docs, "Dataset formats and types" -> "Stepwise supervision"; its example row is
written out below and loaded the same way, so the two schemas are compared by `datasets` itself.
"""

from __future__ import annotations

import json

import datasets
import pytest

from prmkit.formats import convert, save_traces
from prmkit.formats.trl import to_trl_dataset
from prmkit.gym.task import first_error, make_split, parse_prompt
from prmkit.schema import StepLabels, Trace, write_records

# the stepwise-supervision example of TRL's dataset-formats page (standard format)
TRL_DOC_EXAMPLE = {
    "prompt": "Which number is larger, 9.8 or 9.11?",
    "completions": ["The fractional part of 9.8 is 0.8.", "The fractional part of 9.11 is 0.11.",
                    "0.11 is greater than 0.8.", "Hence, 9.11 > 9.8."],
    "labels": [True, True, False, False],
}
EXPECTED = datasets.Features({
    "prompt": datasets.Value("string"),
    "completions": datasets.List(datasets.Value("string")),
    "labels": datasets.List(datasets.Value("bool")),
})


def _gym_traces(n: int = 6) -> list[Trace]:
    """Gym solutions with gold step labels: right steps up to the first error, wrong from there on."""
    out = []
    for i, p in enumerate(make_split("dev", n)):
        chain = parse_prompt(p.prompt)
        steps = chain.solution_steps()
        if i % 2:  # a wrong operand carried into step 1 (or the answer, for one-op chains)
            k = min(1, len(steps) - 1)
            steps[k] = "A:-999" if steps[k].startswith("A:") else "9" + steps[k]
        fe = first_error(steps, chain)
        values = [1.0 if (fe == -1 or k < fe) else 0.0 for k in range(len(steps))]
        out.append(Trace(problem_id=p.id, prompt=p.prompt, steps=steps, first_error=fe,
                         labels=StepLabels(values=values, method="gold")))
    return out


def _load_json(path) -> datasets.Dataset:
    return datasets.load_dataset("json", data_files=str(path), split="train")


def test_trl_doc_example_has_the_expected_features(tmp_path):
    ref = tmp_path / "trl_doc.jsonl"
    ref.write_text(json.dumps(TRL_DOC_EXAMPLE) + "\n")
    assert _load_json(ref).features == EXPECTED


def test_exported_jsonl_loads_with_trl_stepwise_columns_and_types(tmp_path):
    traces = _gym_traces()
    internal = tmp_path / "traces.jsonl"
    write_records(internal, traces)
    out = tmp_path / "trl.jsonl"
    convert(internal, "prmkit", out, "trl")  # the path `prmkit convert --target trl` takes
    ds = _load_json(out)
    assert ds.column_names == ["prompt", "completions", "labels"]
    assert ds.features == EXPECTED
    # values survive: labels are Python bools, one per step, matching the gold first error
    for row, t in zip(ds, traces):
        assert row["prompt"] == t.prompt and row["completions"] == t.steps
        assert all(type(v) is bool for v in row["labels"])
        assert row["labels"] == [k < t.first_error or t.first_error == -1 for k in range(len(t.steps))]
    assert any(not all(r["labels"]) for r in ds) and any(all(r["labels"]) for r in ds)


def test_exported_dataset_object_matches_and_round_trips_through_disk(tmp_path):
    ds = to_trl_dataset(_gym_traces())
    assert ds.features == EXPECTED
    ds.save_to_disk(str(tmp_path / "ds"))
    back = datasets.load_from_disk(str(tmp_path / "ds"))
    assert back.features == EXPECTED and back.to_list() == ds.to_list()


def test_soft_labels_are_the_only_documented_deviation(tmp_path):
    """Soft (MC) labels cannot be bools: they stay float64, and `label_type='bool'` refuses them."""
    t = _gym_traces(1)[0]
    soft = Trace(problem_id=t.problem_id, prompt=t.prompt, steps=t.steps,
                 labels=StepLabels(values=[0.5] * len(t.steps), method="mc_soft"))
    ds = to_trl_dataset([soft])
    assert ds.features["labels"] == datasets.List(datasets.Value("float64"))
    from prmkit.errors import InputError
    with pytest.raises(InputError, match="label_type='bool'"):
        save_traces([soft], tmp_path / "x.jsonl", "trl", label_type="bool")
