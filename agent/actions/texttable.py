"""Plain fixed-width tables for long lists on a terminal (the recordings of `status`).

rich measures every cell of every column several times to lay a table out; for the 100
newest recordings that was a third of a second of `status` at a million recordings (issue
13). These lists have a known shape, so one pass over the cells in display cells (CJK
officers and places are two cells wide) is enough: the columns an operator acts on keep
their full width, the others give way first (rightmost first) and are cut with an ellipsis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

GAP = 1  # cells between columns


@dataclass(frozen=True)
class Column:
    header: str
    keep: bool = False  # never cut below its widest cell (serial, state, deadline)
    max_width: int | None = None  # a column that gives way is at most this wide


def _cut(text: str, width: int) -> str:
    if width <= 1 or cell_len(text) <= width:
        return set_cell_size(text, width)  # padded to the column (or a 1-cell stub)
    return set_cell_size(text, width - 1) + "…"


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], total: int) -> list[int]:
    widths = [cell_len(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            n = cell_len(cell)
            if n > widths[i]:
                widths[i] = n
    for i, c in enumerate(columns):
        if c.max_width is not None and not c.keep:
            widths[i] = min(widths[i], max(c.max_width, cell_len(c.header)))
    over = sum(widths) + GAP * (len(widths) - 1) - total
    # Give way right to left among the columns that may, down to three cells each.
    for i in reversed(range(len(columns))):
        if over <= 0:
            break
        if columns[i].keep:
            continue
        take = min(over, max(widths[i] - 3, 0))
        widths[i] -= take
        over -= take
    return widths


def render(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, title: str = ""
) -> str:
    """The table as text no wider than `width` where the kept columns allow."""
    widths = _widths(columns, rows, width)
    sep = " " * GAP
    lines = []
    if title:
        lines.append(title)
    lines.append(sep.join(_cut(c.header, w) for c, w in zip(columns, widths, strict=True)).rstrip())
    lines.append(sep.join("─" * w for w in widths))
    for row in rows:
        lines.append(sep.join(_cut(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
