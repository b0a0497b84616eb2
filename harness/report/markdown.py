"""report.md: the comparison document as Markdown for a mail or a CI summary: aligned
tables that also read as plain text; figures and the full metric tables are left out."""

from __future__ import annotations

from harness.report.compare import Comparison
from harness.report.document import (
    Block,
    Bullets,
    Code,
    Document,
    Figure,
    FullTable,
    Para,
    Table,
    Warning,
    build_document,
)
from harness.tables import markdown_table

__all__ = ["render_markdown", "to_markdown"]


def _block(block: Block) -> list[str]:
    match block:
        case Figure() | FullTable():
            return []  # HTML only
        case Table():
            return [markdown_table(block.headers, block.rows, block.right), ""]
        case Para():
            return [block.text, ""]
        case Bullets():
            return [*(f"- {item}" for item in block.items), ""]
        case Warning():
            return [f"**WARNING: {block.title}**", "", *(f"- {i}" for i in block.items), ""]
        case Code():
            return ["```", *block.lines, "```", ""]


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    for block in doc.intro:
        out += _block(block)
    for section in doc.sections:
        blocks = [line for block in section.blocks for line in _block(block)]
        if section.level == 3 and not blocks:
            continue  # e.g. an "all metrics" section, whose table is HTML only
        out += ["#" * section.level + " " + section.title, "", *blocks]
    return "\n".join(out)


def render_markdown(cmp: Comparison) -> str:
    return to_markdown(build_document(cmp))
