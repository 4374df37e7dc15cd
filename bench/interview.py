"""Interview-room benchmark: two cameras at 1280x720@25 fps plus a microphone, recorded by
`evidence-agent run` (a subprocess, as in production) for a while, then panel round trips.

Prints, per camera: frames the camera sent, frames it had to skip because the reader was too
slow, video frames in the recorded segments (counted by ffprobe), the fraction dropped
(target 0), and the CPU of its ffmpeg process (share of one core); the agent process's own CPU
(the Python side: watchers, closer, ingest); and the latency from a panel button press to the
lamp (target under 0.5 s).

    .venv/bin/python -m bench.interview [--seconds 60] [--size 1280x720] [--fps 25]
                                        [--preset veryfast] [--trials 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simulators.room import RoomSim  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (children not included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK


def write_config(base: Path, room: RoomSim, preset: str, segment: float) -> Path:
    cfg = base / "agent.toml"
    cameras = "\n".join(
        f'[[interview.cameras]]\nid = "{c.name}"\nvideo = "{c.url}"\nfps = {c.fps:g}\n'
        for c in room.cameras
    )
    assert room.panel is not None
    cfg.write_text(
        f"""[station]
id = "bench-room"
role = "interview"
data_dir = "{base / "data"}"

[detect]
mount_roots = ["{base / "media"}"]

[ingest]
spool_reserve_bytes = 0
release_after = "never"

[interview]
room = "询问室1"
microphone = "{room.mic.url}"
segment_seconds = {segment}
video_preset = "{preset}"

[interview.panel]
port = "{room.panel.path}"

{cameras}""",
        encoding="utf-8",
    )
    (base / "media").mkdir()
    return cfg


def cli(cfg: Path, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(cfg), *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    if out.returncode != 0:
        raise SystemExit(f"evidence-agent {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def wait_for(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def ffmpeg_pids(data: Path) -> dict[str, int]:
    pids = {}
    for run_json in sorted((data / "interview" / "work").glob("*/*/run-*/run.json")):
        doc = json.loads(run_json.read_text())
        if doc.get("pid") and Path(f"/proc/{doc['pid']}").exists():
            pids[doc["camera"]] = doc["pid"]
    return pids


def video_frames(path: Path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    # MPEG-TS lists the stream twice (under its program and on its own): take one.
    lines = [line for line in out.splitlines() if line.strip()]
    return int(lines[0]) if lines else 0


def record(cfg: Path, data: Path, room: RoomSim, seconds: float) -> dict[str, Any]:
    res = cli(cfg, "interview", "start", "--case", "BENCH-1")
    pids = wait_for(
        lambda: ffmpeg_pids(data) if len(ffmpeg_pids(data)) == 2 else None,
        20,
        "two ffmpeg processes",
    )
    sent0 = {c.name: (c.frames_sent, c.skipped_frames) for c in room.cameras}
    cpu0 = {cam: cpu_seconds(pid) or 0.0 for cam, pid in pids.items()}
    agent_pid = json.loads((data / "interview" / "state.json").read_text())["pid"]
    agent0, sims0, t0 = cpu_seconds(agent_pid) or 0.0, os.times(), time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = {cam: ((cpu_seconds(pid) or 0.0) - cpu0[cam]) / wall for cam, pid in pids.items()}
    agent_cpu = ((cpu_seconds(agent_pid) or 0.0) - agent0) / wall
    sims1 = os.times()
    sims_cpu = (sims1.user + sims1.system - sims0.user - sims0.system) / wall
    # Frames a camera sends after the stop request are not losses: count up to the request.
    at_stop = {c.name: (c.frames_sent, c.skipped_frames) for c in room.cameras}
    stop = cli(cfg, "interview", "stop")
    report = cli(cfg, "interview", "report", str(res["session"]), "--no-verify")
    cams = {}
    for cam in room.cameras:
        files = [
            Path(s["volume"]) / s["file"] for s in report["segments"] if s["camera"] == cam.name
        ]
        recorded = sum(video_frames(f) for f in files)
        sent, skipped = at_stop[cam.name]  # from the start of the session to the stop request
        offered = sent + skipped
        # Skipped frames are lost for sure; frames sent but missing from the record are lost
        # too (frames recorded after the stop request cannot make up for either).
        lost = skipped + max(0, sent - recorded)
        cams[cam.name] = {
            "frames_sent": sent,
            "frames_skipped_by_camera": skipped,
            "frames_recorded": recorded,
            "frames_sent_after_stop_request": cam.frames_sent - sent,
            "dropped_fraction": round(lost / offered, 5) if offered else None,
            "skipped_while_measuring": at_stop[cam.name][1] - sent0[cam.name][1],
            "ffmpeg_cpu_core_share": round(cpu[cam.name], 3),
            "segments": len(files),
        }
    return {
        "seconds": round(wall, 1),
        "coverage_pct": stop.get("coverage_pct"),
        "cameras": cams,
        "agent_process_cpu_core_share": round(agent_cpu, 3),
        "simulators_cpu_core_share": round(sims_cpu, 3),
    }


def lamp_trials(cfg: Path, room: RoomSim, trials: int) -> dict[str, Any]:
    panel = room.panel
    assert panel is not None
    on, off = [], []
    for _ in range(trials):
        pressed = panel.press("START")
        lit = panel.wait_lamp(True, 15)
        if lit is None:
            raise SystemExit("the lamp did not go on within 15 s")
        on.append(lit - pressed)
        time.sleep(2.0)
        pressed = panel.press("STOP")
        dark = panel.wait_lamp(False, 15)
        if dark is None:
            raise SystemExit("the lamp did not go off within 15 s")
        off.append(dark - pressed)
        wait_for(lambda: cli(cfg, "interview", "list")[0]["state"] == "closed", 30, "close")
    return {
        "trials": trials,
        "start_to_lamp_on_s": {"median": round(statistics.median(on), 3), "max": round(max(on), 3)},
        "stop_to_lamp_off_s": {
            "median": round(statistics.median(off), 3),
            "max": round(max(off), 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="measured recording time")
    p.add_argument("--size", default="1280x720")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--preset", default="veryfast", help="interview.video_preset")
    p.add_argument("--segment", type=float, default=20.0, help="interview.segment_seconds")
    p.add_argument("--trials", type=int, default=5, help="panel start/stop round trips")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    room = RoomSim(cameras=2, width=w, height=h, fps=args.fps).start(control_port=None)
    with tempfile.TemporaryDirectory(prefix="bench-interview-") as tmp:
        base = Path(tmp)
        cfg = write_config(base, room, args.preset, args.segment)
        log = (base / "agent.log").open("wb")
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(cfg), "run"],
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        try:
            state = base / "data" / "interview" / "state.json"
            wait_for(lambda: state.exists(), 30, "the agent")
            result: dict[str, Any] = {
                "size": args.size,
                "fps": args.fps,
                "preset": args.preset,
                "cpus": os.cpu_count(),
            }
            result["recording"] = record(cfg, base / "data", room, args.seconds)
            result["panel"] = lamp_trials(cfg, room, args.trials)
        finally:
            agent.terminate()
            agent.wait(60)
            log.close()
            room.close()
    print_result(result, args.json)
    return 0


def print_result(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
        return
    rec = r["recording"]
    print(
        f"interview bench: 2 cameras {r['size']}@{r['fps']:g} fps, libx264 {r['preset']}, "
        f"{r['cpus']} CPUs, {rec['seconds']} s measured; coverage {rec['coverage_pct']} %"
    )
    for name, c in rec["cameras"].items():
        print(
            f"  {name}: sent {c['frames_sent']}, skipped by camera {c['frames_skipped_by_camera']}"
            f", recorded {c['frames_recorded']} -> dropped {c['dropped_fraction']:.4f} "
            f"(target 0); ffmpeg CPU {100 * c['ffmpeg_cpu_core_share']:.0f} % of a core"
        )
    print(
        f"  agent process (Python side) CPU {100 * rec['agent_process_cpu_core_share']:.0f} % "
        f"of a core; simulators {100 * rec['simulators_cpu_core_share']:.0f} %"
    )
    pan = r["panel"]
    print(
        f"  panel button -> lamp on: median {pan['start_to_lamp_on_s']['median'] * 1000:.0f} ms,"
        f" max {pan['start_to_lamp_on_s']['max'] * 1000:.0f} ms (target < 500 ms); "
        f"stop -> off median {pan['stop_to_lamp_off_s']['median'] * 1000:.0f} ms "
        f"({pan['trials']} trials)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
