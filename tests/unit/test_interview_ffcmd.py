"""The ffmpeg command: real ffmpeg must accept the filter graph and honour the escaping, with
an awkward path and a case number holding Chinese, `%`, `:` and a backslash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from agent.config.loader import CameraConfig, InterviewConfig
from agent.interview import ffcmd
from agent.interview.runs import jobs_for_run, parse_segment_list
from agent.rules.sources import parse
from toolcheck import require_tool


def test_overlay_text_keeps_literals_and_adds_the_clock() -> None:
    text = ffcmd.overlay_text("询问室1", "cam1", "粤环罚〔2024〕12号 100%\\x")
    first, second = text.split("\n")
    assert first == "询问室1  cam1  粤环罚〔2024〕12号 100\\%\\\\x"
    assert second.startswith("%{localtime:")


def test_escape_filter_value_quotes_every_special_character() -> None:
    # As in ffmpeg-filters(1): `'` becomes \\\' and `:` becomes \\: in a filtergraph.
    assert ffcmd.escape_filter_value("/a:b'c,d[e];f") == r"/a\\:b\\\'c\,d\[e\]\;f"


def test_find_cjk_font_returns_a_font_file() -> None:
    require_tool("fc-match")
    font = ffcmd.find_cjk_font()
    assert font is None or font.is_file()


def test_ffmpeg_renders_the_graph_with_an_awkward_path(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    odd = tmp_path / "it's: a, [dir];"
    odd.mkdir()
    overlay = odd / "overlay.txt"
    overlay.write_text(ffcmd.overlay_text("询问室1", "cam1", "案 100% a:b"), encoding="utf-8")
    graph = ffcmd.filter_graph(overlay, ffcmd.find_cjk_font(), 5.0, "1:a", "0:v")
    out = tmp_path / "x.ts"
    proc = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-map",
            "[aenc]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            str(out),
            "-map",
            "[m]",
            "-c:v",
            "ppm",
            "-f",
            "image2pipe",
            "pipe:1",
            "-map",
            "[am]",
            "-f",
            "s16le",
            "-y",
            str(tmp_path / "am.raw"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Stray %" not in proc.stderr
    assert proc.stdout.startswith(b"P6\n320 240\n255\n")  # monitor pictures, 320 wide
    assert (tmp_path / "am.raw").stat().st_size > 8000  # 1 s of 8 kHz 16-bit sound
    assert out.stat().st_size > 0


def test_build_puts_timeouts_on_network_inputs(tmp_path: Path) -> None:
    icfg = InterviewConfig(read_timeout_seconds=4, segment_seconds=10)
    cam = CameraConfig(id="cam1", video="http://127.0.0.1:9/video.mjpg", fps=25)
    inputs = ffcmd.Inputs(parse(cam.video), parse("rtsp://mic.local/a"))
    argv = ffcmd.build(
        icfg, cam, inputs, tmp_path, tmp_path / "o.txt", None, 1_700_000_000.25, "ffmpeg", 7, 8
    )
    joined = " ".join(argv)
    assert "-rw_timeout 4000000 -probesize 32768" in joined
    assert joined.index("rtsp://mic.local/a") < joined.index("video.mjpg")  # sound first
    assert "[1:v]format=yuv420p" in joined and "[0:a]aresample" in joined
    assert "-rtsp_transport tcp -timeout 4000000 -use_wallclock_as_timestamps 1" not in joined
    assert "-timeout 4000000" in joined
    assert "-output_ts_offset -1700000000.250" in joined and "-g 50" in joined
    assert argv[-1] == "pipe:7" and "pipe:8" in argv
    assert "-segment_time 10" in joined


def test_segment_list_and_jobs(tmp_path: Path) -> None:
    run = tmp_path / "run-001"
    run.mkdir()
    for i in range(3):
        (run / f"seg_{i:06d}.ts").write_bytes(b"x" * 10)
    # ffmpeg starts the first entry at 0; the last line is torn (written while we read)
    (run / "list.csv").write_text(
        "seg_000000.ts,0.000000,10.2\nseg_000001.ts,10.24,20.2\nseg_000002.ts,20.2", "utf-8"
    )
    assert list(parse_segment_list(run / "list.csv")) == ["seg_000000.ts", "seg_000001.ts"]
    jobs = jobs_for_run(run, "s", "cam1", 1000.0, 1000.9, include_last=False, skip=set())
    assert [(i, j.start, j.end, j.salvaged) for i, j in jobs] == [
        (0, 1000.9, 1010.2, False),
        (1, 1010.24, 1020.2, False),
    ]
    jobs = jobs_for_run(run, "s", "cam1", 1000.0, 1000.9, include_last=True, skip={0, 1})
    assert [(i, j.start, j.end, j.salvaged) for i, j in jobs] == [(2, 1020.2, None, True)]


def test_ppm_header_reader() -> None:
    import io

    from agent.interview.ffproc import _ppm_header

    pic = np.zeros((2, 3, 3), np.uint8).tobytes()
    f = io.BytesIO(b"P6\n3 2\n255\n" + pic)
    assert _ppm_header(f) == (3, 2)
    assert f.read() == pic
    assert _ppm_header(io.BytesIO(b"")) is None
