"""Syslog priority prefixes for the journal (issue 15, item 5)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from agent.cli.logsetup import JournalPrefixFormatter, priority, stderr_is_journal


def test_levels_map_to_syslog_priorities() -> None:
    assert [priority(lv) for lv in (50, 40, 30, 20, 10, 5)] == [2, 3, 4, 6, 7, 7]
    assert priority(35) == 4  # between WARNING and ERROR: warning


def test_every_line_of_a_record_carries_the_prefix() -> None:
    fmt = JournalPrefixFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise RuntimeError("disk gone")
    except RuntimeError:
        import sys

        record = logging.LogRecord("agent.x", 40, __file__, 1, "copy failed", (), sys.exc_info())
    lines = fmt.format(record).splitlines()
    assert lines[0] == "<3>ERROR agent.x: copy failed"
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)


def test_journal_stream_must_match_the_stream(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w") as fh:
        st = __import__("os").fstat(fh.fileno())
        assert stderr_is_journal(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not stderr_is_journal(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stderr_is_journal(fh, {"JOURNAL_STREAM": "garbage"})
        assert not stderr_is_journal(fh, {})
    assert not stderr_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:1"})
