"""An empty `save_to_disk` dataset is a one-line input error, not a traceback from `datasets`."""

from __future__ import annotations

import datasets
import pytest

from prmkit.cli import main


def test_empty_saved_dataset_is_named(tmp_path, capsys):
    d = tmp_path / "empty"
    datasets.Dataset.from_dict({"question": [], "answer": []}).save_to_disk(str(d))
    with pytest.raises(SystemExit) as e:
        main(["convert", "--source", "columns", "--target", "problems", "--input", str(d), "--output",
              str(tmp_path / "p.jsonl"), "--problem-field", "question", "--answer-field", "answer"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and "Traceback" not in "\n".join(err)
    assert str(d) in err[-1] and err[-1].startswith("error:")
