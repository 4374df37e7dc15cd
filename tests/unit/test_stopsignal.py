"""SIGTERM while the main thread holds the stop event's lock still stops the daemon.

The daemon's main thread polls `stop.wait(1.0)`; a signal handler runs on that thread and, if
it set the event itself, would wait forever on the event's lock when the signal lands inside
`wait` (a daemon that never stopped, seen under load). The race is forced here: the lock is
held by the main thread when the signal is delivered. Run in a child process, so the old
behaviour shows as a timeout instead of a hung test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from agent.core import stopsignal

    stop, work = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, stopsignal.handler(stop, work))
    with stop._cond:  # where Event.wait holds it, for an instant, every second
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # let the handler run on this (the main) thread
            time.sleep(0)
    print("stopped" if stop.wait(5) and work.wait(5) else "not stopped", flush=True)
    """
)


def test_a_signal_landing_inside_stop_wait_still_stops() -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stopped"
