"""ReST-MCTS* process-value data from search trees (Zhang et al. 2024, arXiv 2406.03816).

`prmkit search --method mcts` writes one tree per problem (`trees.jsonl`, records of
`search.mcts.export_tree`). `value_traces` turns a tree into training traces for a value model: the
targets v of `rules.rest_mcts_value_targets` (v = k/K along a correct path, decaying below the last
node that still had a correct descendant), one trace per finished solution in the tree, labelled with
the v of every node on its path (soft labels, method "rest_mcts"). A tree without a correct solution
gives nothing (the official code emits no sample for it).

    traces = trees_to_value_traces("runs/search/trees.jsonl", problems)   # -> prmkit train prm --data
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from prmkit.errors import InputError
from prmkit.label.rules import TreeNode, rest_mcts_value_targets
from prmkit.schema import Problem, StepLabels, Trace


def tree_nodes(tree_records: Sequence[dict]) -> list[TreeNode]:
    """`search.mcts.export_tree` records -> `label.rules.TreeNode`s, ready for `rest_mcts_value_targets`."""
    return [TreeNode(parent=r["parent"], is_terminal=bool(r["terminal"]), is_correct=bool(r["correct"]))
            for r in tree_records]


def value_traces(records: Sequence[dict], problem: Problem) -> list[Trace]:
    """Value-labelled traces of one exported MCTS tree (node 0 = the root)."""
    v = rest_mcts_value_targets(tree_nodes(records))
    out = []
    for j, rec in enumerate(records):
        if j == 0 or not rec["terminal"]:
            continue
        path, k = [], j
        while k > 0:
            path.append(k)
            k = records[k]["parent"]
        path.reverse()
        # a node that ended with an empty step repeats its parent's prefix: it adds no step
        path = [k for k in path if records[k]["depth"] > records[records[k]["parent"]]["depth"]] or path[-1:]
        values = [v[k] for k in path]
        if any(x is None for x in values) or not path:
            continue
        out.append(Trace(problem_id=problem.id, prompt=problem.prompt, steps=[records[k]["step"] for k in path],
                         outcome=float(bool(rec["correct"])),
                         labels=StepLabels(values=[float(x) for x in values], method="rest_mcts"),
                         meta={"tree_node": j}))
    return out


def trees_to_value_traces(path: str | Path, problems: Sequence[Problem]) -> list[Trace]:
    """Every tree of a `trees.jsonl` (lines {"problem_id", "nodes"}) as value-labelled traces."""
    by_id = {p.id: p for p in problems}
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                pid, nodes = rec["problem_id"], rec["nodes"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"expected a JSON object with problem_id and nodes ({e})", file=str(path), line=n,
                                 field="nodes") from e
            if pid not in by_id:
                raise InputError(f"problem {pid!r} is not among the given problems", file=str(path), line=n,
                                 field="problem_id")
            missing = [k for k in ("parent", "step", "depth", "terminal", "correct") if nodes and k not in nodes[0]]
            if missing:
                raise InputError(f"tree nodes lack {missing} (written by an older prmkit?)", file=str(path), line=n,
                                 field="nodes")
            out += value_traces(nodes, by_id[pid])
    return out
