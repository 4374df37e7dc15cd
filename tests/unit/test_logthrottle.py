"""Log rate limiting per message kind (issue 13): the first of a kind always shows, repeats
within the window are counted, and the next one after it says how many were suppressed."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

from agent.core.logthrottle import RateLimitFilter


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _logger(window: float, clock: FakeClock) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.addFilter(RateLimitFilter(window, clock))
    log = logging.getLogger(f"throttle-test-{id(out)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return log, out


def test_first_of_a_kind_shows_then_repeats_are_counted() -> None:
    clock = FakeClock()
    log, out = _logger(60.0, clock)
    for i in range(100):
        log.warning("bay %s: read failed (errno %d)", "3", i)
    log.warning("spool low: %d bytes free", 5)  # another kind is not held back
    clock.t += 61
    log.warning("bay %s: read failed (errno %d)", "3", 100)
    lines = out.getvalue().splitlines()
    assert lines == [
        f"{log.name} WARNING bay 3: read failed (errno 0)",
        f"{log.name} WARNING spool low: 5 bytes free",
        f"{log.name} WARNING bay 3: read failed (errno 100) (99 similar suppressed)",
    ]


def test_level_is_part_of_the_kind() -> None:
    clock = FakeClock()
    log, out = _logger(60.0, clock)
    log.warning("archive failed")
    log.error("archive failed")
    log.warning("archive failed")
    assert out.getvalue().count("archive failed") == 2


def test_cli_installs_the_limit(tmp_path) -> None:
    """The real CLI's logging: a burst of one kind shows once on stderr."""
    code = (
        "import logging, sys\n"
        "from agent.cli.main import _setup_logging\n"
        "_setup_logging('info')\n"
        "log = logging.getLogger('agent.test')\n"
        "for i in range(50): log.warning('device %s gone', i)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("device 0 gone") == 1
    assert proc.stderr.count("gone") == 1
