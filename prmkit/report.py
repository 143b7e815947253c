"""HTML reports: plots (matplotlib, embedded as PNG) and tables in one self-contained page (the helpers
every report uses; `prmkit demo`'s own page is `prmkit/demo/report.py`)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from prmkit.schema import atomic_write_text


def figure_to_img(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def png_to_img(path: str | Path) -> str:
    data = Path(path).read_bytes()
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def table_html(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def write_page(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}")
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    atomic_write_text(path, f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
    return path
