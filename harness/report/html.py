"""report.html: the comparison document as one self-contained HTML page (inline CSS and
SVG plots, every metric row)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from harness.report.compare import Comparison
from harness.report.document import (
    Block,
    Bullets,
    Code,
    Document,
    Figure,
    Para,
    Table,
    Warning,
    build_document,
)

__all__ = ["render_html", "to_html"]

CSS = """
body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}
td.n{text-align:right;font-family:monospace}
.worse,.regression{background:#fdd}.better{background:#dfd}
.warning{border:3px solid #c00;padding:.5em 1em;background:#fee}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}
"""


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    classes: Sequence[str] = (),
    right: Sequence[int] = (),
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(
            f'<td class="n">{html.escape(c)}</td>' if j in right else f"<td>{html.escape(c)}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _block(block: Block) -> str:
    match block:
        case Table():
            return html_table(block.headers, block.rows, block.classes, block.right)
        case Figure():
            return f"<figure>{block.svg}</figure>"
        case Para():
            text = html.escape(block.text)
            return f"<p><strong>{text}</strong></p>" if block.strong else f"<p>{text}</p>"
        case Bullets():
            return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>"
        case Warning():
            items = "".join(f"<li>{html.escape(i)}</li>" for i in block.items)
            return (
                f'<div class="warning"><strong>{html.escape(block.title)}</strong>'
                f"<ul>{items}</ul></div>"
            )
        case Code():
            return f"<pre>{html.escape(chr(10).join(block.lines))}</pre>"


def to_html(doc: Document) -> str:
    title = html.escape(doc.title)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        f"<title>{title}</title><style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        *(_block(b) for b in doc.intro),
    ]
    for section in doc.sections:
        out.append(f"<h{section.level}>{html.escape(section.title)}</h{section.level}>")
        out += [_block(b) for b in section.blocks]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_html(cmp: Comparison) -> str:
    return to_html(build_document(cmp))
