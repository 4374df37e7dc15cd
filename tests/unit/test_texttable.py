"""The plain table of `status`: kept columns whole at 80 cells, CJK counted as two cells."""

from __future__ import annotations

from rich.cells import cell_len

from agent.actions.texttable import Column, render


def test_kept_columns_stay_whole_and_others_give_way_at_80_cells() -> None:
    columns = (
        Column("serial", keep=True),
        Column("deadline", keep=True),
        Column("state", max_width=24),
        Column("officer", max_width=11),
        Column("place"),
    )
    rows = [
        ("ZFY-0000000001", "2026-12-07", "failed: read error", "张三丰警官", "北京市朝阳区" * 6),
        ("BC000002", "2026-12-08", "spooled", "-", "-"),
    ]
    text = render(columns, rows, 80, title="recordings")
    lines = text.splitlines()
    assert lines[0] == "recordings"
    assert max(cell_len(line) for line in lines) <= 80
    first = next(line for line in lines if "ZFY-0000000001" in line)
    assert "2026-12-07" in first and "failed: read error" in first
    assert "张三丰警官" in first  # 10 cells: fits its 11
    assert first.endswith("…")  # the long place gave way, cut with an ellipsis


def test_a_narrow_terminal_cuts_the_rightmost_columns_first() -> None:
    columns = (Column("serial", keep=True), Column("state"), Column("note"))
    rows = [("ABC12345", "spooled", "x" * 50)]
    line = render(columns, rows, 30).splitlines()[-1]
    assert line.startswith("ABC12345 spooled ")  # the note gave way, the state did not
    assert "x" * 10 in line and "x" * 50 not in line and line.endswith("…")
    assert cell_len(line) <= 30
