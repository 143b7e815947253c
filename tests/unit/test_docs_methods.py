"""docs/methods.md covers every method the CLI exposes: each registered name of every registry
(labelling, search strategies, RL advantages, agent turn credit, step aggregation) appears in it
as `name`, and each section names its paper by arXiv id."""

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()


def _registries():
    import prmkit.agents.credit.methods  # noqa: F401  (fills TURN_CREDIT)
    import prmkit.label.methods  # noqa: F401  (fills LABELLERS)
    from prmkit.agents.credit.registry import TURN_CREDIT
    from prmkit.label.registry import LABELLERS
    from prmkit.rewards.aggregate import AGGREGATIONS
    from prmkit.rl.methods import ADVANTAGES
    from prmkit.search.registry import SEARCHES

    return {"label": LABELLERS, "search": SEARCHES, "rl": ADVANTAGES, "agent turn credit": TURN_CREDIT,
            "aggregation": AGGREGATIONS}


@pytest.mark.parametrize("kind", ["label", "search", "rl", "agent turn credit", "aggregation"])
def test_every_registered_method_is_documented(kind):
    names = list(_registries()[kind])
    assert names, f"the {kind} registry is empty"
    missing = [n for n in names if f"`{n}`" not in DOC]
    assert not missing, f"docs/methods.md does not mention these {kind} methods: {missing}"


def test_papers_are_cited_by_arxiv_id():
    ids = set(re.findall(r"\b\d{4}\.\d{4,5}\b", DOC))
    assert len(ids) >= 20, f"only {len(ids)} arXiv ids in docs/methods.md"


def test_nothing_cites_an_outside_methods_document():
    """Code, benches and docs cite papers and docs/methods.md, never the specs document outside the repo:
    `grep -rn METHODS prmkit bench docs` finds nothing (case-sensitive, as grep)."""
    root = Path(__file__).resolve().parents[2]
    hits = [f"{p.relative_to(root)}:{i}" for folder in ("prmkit", "bench", "docs") for p in sorted((root / folder).rglob("*"))
            if p.is_file() and p.suffix in (".py", ".md", ".json", ".txt", ".html", ".toml", ".yaml", ".cfg")
            for i, line in enumerate(p.read_text(errors="ignore").splitlines(), 1) if "METHODS" in line]
    assert not hits, hits
