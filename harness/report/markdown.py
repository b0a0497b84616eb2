"""report.md: the comparison document as Markdown for a mail or a CI summary: aligned
tables that also read as plain text; figures and the full metric tables are left out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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

__all__ = ["markdown_table", "render_markdown", "to_markdown"]


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()
) -> str:
    """A Markdown pipe table padded to fixed width, so it also reads as plain text."""
    right = set(right)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)]
    return "\n".join([line(headers), "|" + "|".join(rule) + "|", *map(line, rows)])


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
