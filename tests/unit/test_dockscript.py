"""Dock scripts: shift change timing and bays, hand-written TOML scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.dockscript import builtin, load, shift_change


def test_shift_change_twelve_recorders_within_two_minutes() -> None:
    serials = [f"DSJ{i:04d}" for i in range(1, 13)]
    script = shift_change(serials, bays=12, window_s=120)
    plugs = [e for e in script.events if e.action == "plug"]
    assert len(plugs) == 12 and {e.bay for e in plugs} == set(range(1, 13))
    assert max(e.at for e in plugs) <= 120.0
    assert not [e for e in script.events if e.action == "unplug"]


def test_more_recorders_than_bays_wait_for_a_free_bay() -> None:
    script = shift_change(["A", "B", "C"], bays=2, window_s=10, dwell_s=30)
    plug_c = next(e for e in script.events if e.serial == "C" and e.action == "plug")
    unplug_a = next(e for e in script.events if e.serial == "A" and e.action == "unplug")
    assert plug_c.at == unplug_a.at == 30.0 and plug_c.bay == unplug_a.bay
    # At one instant an unplug comes before the plug into the same bay.
    assert script.events.index(unplug_a) < script.events.index(plug_c)


def test_no_dwell_with_too_few_bays_is_refused() -> None:
    with pytest.raises(ValueError, match="dwell"):
        builtin("shift-change", ["A", "B", "C"], bays=2)


def test_toml_script_with_recorders(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        '[[recorder]]\nserial="ZFY0009"\nofficer="100009"\ntransport="serial"\n'
        "clock_offset_s=10800\n"
        '[[event]]\nat=1.5\naction="plug"\nserial="ZFY0009"\nbay=3\n'
        '[[event]]\nat=9\naction="unplug"\nserial="ZFY0009"\n'
    )
    script = load(f)
    assert [(e.at, e.action, e.bay) for e in script.events] == [
        (1.5, "plug", 3),
        (9.0, "unplug", None),
    ]
    rec = script.recorders[0]
    assert rec.transport == "serial" and rec.clock_offset_s == 10800


def test_toml_script_errors_name_the_entry(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[[event]]\nat=1\naction="yank"\nserial="A"\n')
    with pytest.raises(ValueError, match=r"event\[0\].*yank"):
        load(f)
    f.write_text(
        '[[recorder]]\nserial="A"\nofficer="1"\ncolour="red"\n[[event]]\nat=0\naction="plug"\nserial="A"\n'
    )
    with pytest.raises(ValueError, match=r"recorder\[0\].*colour"):
        load(f)
