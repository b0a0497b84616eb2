"""Text tables, the one place they are drawn: aligned Markdown (reads as plain text in a
mail), compact Markdown (a CI summary page), and a plain fixed-width terminal table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["compact_markdown", "fixed_width", "markdown_table"]


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()
) -> str:
    """A Markdown pipe table padded to fixed width; ``right`` columns right-aligned."""
    right = set(right)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)]
    return "\n".join([line(headers), "|" + "|".join(rule) + "|", *map(line, rows)])


def compact_markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table without padding (long tables that are only ever rendered)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def fixed_width(rows: Sequence[Sequence[str]]) -> str:
    """Columns separated by two spaces, for the terminal (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
