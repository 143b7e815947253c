"""House rule (docs/architecture.md): no library file over 400 lines, no library function over 60."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE, MAX_FUNC = 400, 60


def oversized(path: Path, source: str) -> list[str]:
    """'file N lines' / 'function NAME N lines' for each part of `source` over the limits."""
    out = []
    lines = source.count("\n")
    if lines > MAX_FILE:
        out.append(f"{path}: file {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNC:
                out.append(f"{path}:{node.lineno}: function {node.name} {n} lines")
    return out


def test_no_library_file_or_function_over_the_limits():
    found = [v for p in sorted((ROOT / "prmkit").rglob("*.py")) for v in oversized(p.relative_to(ROOT), p.read_text())]
    assert not found, "\n".join(found)


def test_the_check_sees_a_long_function_and_a_long_file():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNC))
    src = "def long():\n" + body + "\n" * (MAX_FILE - MAX_FUNC)
    got = oversized(Path("m.py"), src)
    assert got == [f"m.py: file {src.count(chr(10))} lines", f"m.py:1: function long {MAX_FUNC + 1} lines"]
    assert oversized(Path("m.py"), "def short():\n    return 1\n") == []
