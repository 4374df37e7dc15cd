"""The fleet dashboard (dashboard/) in headless Chromium against a real Mosquitto with a
WebSocket listener and two running stations; and `evidence-agent demo --mqtt` end to end."""

from __future__ import annotations

import json
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.cli.demobroker import DashboardServer, dashboard_dir
from fixtures.browser import artifacts_dir, console_log, text_of, wait_page
from fixtures.mosquitto import free_port, password_file
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate
from simulators.serial_recorder import SerialRecorderSim
from toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[2]


def _station(make_station, broker, base: Path, name: str, extra: str = ""):  # type: ignore[no-untyped-def]
    st = make_station(mqtt_config(broker.url, commands_enabled=False) + extra, name=name)
    st.config_path.write_text(
        st.config_path.read_text().replace('id = "test-station"', f'id = "{name}"')
    )
    return st


def _fleet_files(base: Path) -> str:
    """U1 has 11 active officers (1:5 needs 3 recorders) and one recorder in service."""
    base.mkdir(parents=True, exist_ok=True)
    inventory = base / "inventory.csv"
    inventory.write_text(
        "vendor,serial,unit_id,officer_id,status,note\nZFY,SER0042,U1,,in_service,\n",
        encoding="utf-8",
    )
    roster = base / "roster.csv"
    rows = [f"P{i:03d},Officer {i},U1,Unit one,1" for i in range(11)]
    roster.write_text(
        "officer_id,name,unit_id,unit_name,active\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return (
        f'\n[inventory]\nfile = "{inventory}"\n[roster]\nfile = "{roster}"\n'
        "[fleet]\naggregate = true\n"
    )


def _serial_driver(tty: Path) -> str:
    return (
        f'\n[[drivers]]\ntype = "serial"\nports = ["{tty}/*"]\npoll_seconds = 0.2\n'
        "timeout_seconds = 1\n"
    )


def _card(station: str) -> str:
    return f'section[data-station="{station}"]'


def shows(driver: Any, css: str, text: str, timeout: float) -> None:
    """Wait until the first element matching `css` has exactly `text`."""
    wait_page(driver, lambda: text_of(driver, css) == text, timeout, f"{css} = {text!r}")


def test_dashboard_shows_both_stations_battery_ratio_and_live_events(
    make_broker, make_station, subscribe, chrome, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ws_port = free_port()
    broker = make_broker(extra=f"listener {ws_port} 127.0.0.1\nprotocol websockets\n")
    tty = Path(tempfile.mkdtemp(prefix="ea-dash-"))  # ptys' links: short paths
    sim = SerialRecorderSim(
        "SER0042", battery_pct=42, charging=False, unit_id="U1", link=tty / "bay1"
    )
    fleet = _fleet_files(tmp_path / "fleet") + _serial_driver(tty)
    a = _station(make_station, broker, tmp_path, "station-a", fleet)
    b = _station(make_station, broker, tmp_path, "station-b")
    events = subscribe(broker, "evidence/+/events")
    server = DashboardServer(dashboard_dir()).start()
    sim.plug()
    driver = chrome
    try:
        with running(a), running(b):
            driver.get(server.url(f"ws://127.0.0.1:{ws_port}"))
            # Both stations, from their retained availability and state.
            for name in ("station-a", "station-b"):
                shows(driver, f'{_card(name)} [data-field="availability"]', "在线", 30)
            # A recorder's battery (read over the serial driver, published retained).
            rec = f'{_card("station-a")} tr[data-serial="SER0042"]'
            shows(driver, f'{rec} [data-field="battery"]', "42%", 30)
            # The unit ratio against 1:5: 11 officers need 3 recorders, 1 is in service.
            unit = f'{_card("station-a")} tr[data-unit="U1"]'
            shows(driver, f'{unit} [data-field="recorders_counted"]', "1 / 3", 30)
            assert text_of(driver, f'{unit} [data-field="rule"]') == "1:5"
            assert text_of(driver, f'{unit} [data-field="compliant"]') == "不达标"
            fleet_row = '#fleet-units tr[data-unit="U1"]'
            shows(driver, f'{fleet_row} [data-field="computed_by"]', "station-a", 30)

            # A live event: station B docks a recorder; the page shows the event within 5 s of
            # the broker delivering it to a plain subscriber.
            since = time.monotonic()
            drop_volume(b, tmp_path / "b", "ZFYB7", 1, unit="U1")
            msg = events.wait_for(
                lambda m: m.topic == "evidence/station-b/events" and m.received > since, 30
            )
            ev = msg.json()
            item = f'#events li[data-event-id="{ev["id"]}"]'
            # The page stamps when it first showed the event (wall clock): that, not how fast
            # a busy test machine's webdriver polls, is the dashboard's latency.
            received_wall = time.time() - (time.monotonic() - msg.received)
            # Read in one go inside the page: the list is re-rendered as events arrive, so an
            # element found by one webdriver call may be gone by the next.
            read = (
                "const li = document.querySelector(arguments[0]);"
                "return li && [li.dataset.shownAt, li.querySelector('.ev-station').textContent,"
                " li.querySelector('.ev-type').title];"
            )
            shown, station, title = wait_page(
                driver, lambda: driver.execute_script(read, item), 30, ev["type"]
            )
            assert int(shown) / 1000 - received_wall <= 5.0, int(shown) / 1000 - received_wall
            assert station == "station-b"
            assert title == ev["type"]
            done = '#events li[data-station="station-b"][data-type="ingest.completed"]'
            wait_page(driver, lambda: driver.find_elements("css selector", done), 30, done)
            assert text_of(driver, f"{done} .ev-type") == "入库完成"
            driver.save_screenshot(str(artifacts_dir() / "dashboard-two-stations.png"))

            # English on request; the same numbers.
            driver.find_element("id", "lang").click()
            shows(driver, f'{unit} [data-field="compliant"]', "not compliant", 5)
            shows(driver, f'{_card("station-b")} [data-field="availability"]', "online", 5)
            driver.save_screenshot(str(artifacts_dir() / "dashboard-two-stations-en.png"))
        # The stations stop cleanly: their availability turns offline on the page.
        shows(driver, f'{_card("station-a")} [data-field="availability"]', "offline", 15)
    finally:
        server.stop()
        sim.unplug()
        shutil.rmtree(tty, ignore_errors=True)
    assert "SEVERE" not in console_log(driver), console_log(driver)


def test_untrusted_payload_text_is_shown_as_text_and_bad_topics_are_ignored(
    make_broker, subscribe, chrome
) -> None:  # type: ignore[no-untyped-def]
    ws_port = free_port()
    broker = make_broker(extra=f"listener {ws_port} 127.0.0.1\nprotocol websockets\n")
    pub = subscribe(broker, "nothing/#")
    server = DashboardServer(dashboard_dir()).start()
    evil = "<img src=x onerror=\"document.title='pwned'\">"
    try:
        chrome.get(server.url(f"ws://127.0.0.1:{ws_port}"))
        shows(chrome, "#conn-status", f"已连接: ws://127.0.0.1:{ws_port}", 15)
        pub.publish("evidence/dock-x/availability", "online")
        rec = {"serial": evil, "officer": evil, "battery": "99", "unit": evil}
        pub.publish("evidence/dock-x/recorders/R1/state", json.dumps(rec))
        ev = {"id": "e1", "type": evil, "reason": evil, "at": evil}
        pub.publish("evidence/dock-x/events", json.dumps(ev))
        pub.publish("evidence/dock-x/events", b"\xff\xfe not utf-8")
        pub.publish("evidence/dock-x/state", "[1, 2, 3]")  # not an object: ignored
        pub.publish("evidence/bad station/state", json.dumps({"role": "dock"}))  # not an id
        row = f'{_card("dock-x")} tr[data-serial="R1"]'
        shows(chrome, f'{row} [data-field="officer"]', evil, 15)
        shows(chrome, '#events li[data-event-id="e1"] .ev-detail', evil, 15)
        assert text_of(chrome, f'{row} [data-field="battery"]') == "—"  # a string is no number
        assert chrome.find_elements("css selector", "main img") == []
        assert chrome.title != "pwned"
        stations = chrome.find_elements("css selector", "section[data-station]")
        assert [s.get_attribute("data-station") for s in stations] == ["dock-x"]
        assert len(chrome.find_elements("css selector", "#events li[data-event-id]")) == 1
    finally:
        server.stop()


def test_deadlines_at_risk_and_missed_in_station_time(make_broker, subscribe, chrome) -> None:  # type: ignore[no-untyped-def]
    """Compliance counts and deadline events (payloads as docs/schemas/ define them) show with
    the station's own offset, whatever the browser's zone."""
    ws_port = free_port()
    broker = make_broker(extra=f"listener {ws_port} 127.0.0.1\nprotocol websockets\n")
    pub = subscribe(broker, "nothing/#")
    at = "2026-11-25T09:00:00.120000+08:00"
    compliance = {
        "schema": 2, "station": "dock-9", "at": at,
        "deadlines": {"open": 5, "due": 2, "overdue": 1},
        "next_deadline": "2026-11-24T23:59:59.999999+08:00", "untagged": 3, "units": [],
    }  # fmt: skip
    missed = {
        "schema": 2, "id": "01a20080-97ab-7bb1-bba7-7399917e0d68", "type": "deadline.missed",
        "station": "dock-9", "at": at, "recording": "01a20080-967b-7c54-abff-b7b96d6ad528",
        "serial": "ZFYA1", "officer": "100001", "unit": "U1",
        "deadline": "2026-11-24T23:59:59.999999+08:00", "state": "discovered",
    }  # fmt: skip
    validate("compliance", compliance)
    validate("event", missed)
    server = DashboardServer(dashboard_dir()).start()
    try:
        chrome.get(server.url(f"ws://127.0.0.1:{ws_port}") + "&lang=en")
        zone = chrome.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert zone == "America/New_York"  # the browser's zone is not the stations'
        shows(chrome, "#conn-status", f"connected: ws://127.0.0.1:{ws_port}", 15)
        pub.publish("evidence/dock-9/compliance", json.dumps(compliance))
        pub.publish("evidence/dock-9/events", json.dumps(missed))
        card = _card("dock-9")
        shows(chrome, f'{card} [data-field="at_risk"] dd', "2", 15)
        assert text_of(chrome, f'{card} [data-field="missed"] dd') == "1"
        assert text_of(chrome, f'{card} [data-field="untagged"] dd') == "3"
        deadline = "2026-11-24 23:59:59 +08:00"
        assert text_of(chrome, f'{card} [data-field="next_deadline"] dd') == deadline
        alert = f'{card} .alerts li[data-event-id="{missed["id"]}"]'
        shows(chrome, alert, f"deadline missed: ZFYA1 · recording {missed['recording']} · "
              f"deadline {deadline}", 15)  # fmt: skip
        assert text_of(chrome, f'#events li[data-event-id="{missed["id"]}"] time') == (
            "2026-11-25 09:00:00 +08:00"
        )
    finally:
        server.stop()


def test_settings_are_remembered_and_the_page_reconnects_after_a_broker_restart(
    make_broker, subscribe, chrome
) -> None:  # type: ignore[no-untyped-def]
    ws_port = free_port()
    extra = f"listener {ws_port} 127.0.0.1\nprotocol websockets\n"
    broker = make_broker(persistence=True, extra=extra)
    pub = subscribe(broker, "nothing/#")
    pub.client.publish("fleet/north/dock-r/availability", "online", qos=1, retain=True)
    server = DashboardServer(dashboard_dir()).start()
    try:
        chrome.get(server.url(f"ws://127.0.0.1:{ws_port}", prefix="fleet/north"))
        card = _card("dock-r")
        shows(chrome, f'{card} [data-field="availability"]', "在线", 15)
        # Opened again without a query string: the broker and prefix last used are kept.
        chrome.get(f"http://127.0.0.1:{server.port}/index.html")
        assert chrome.find_element("id", "broker").get_attribute("value") == (
            f"ws://127.0.0.1:{ws_port}"
        )
        assert chrome.find_element("id", "prefix").get_attribute("value") == "fleet/north"
        shows(chrome, f'{card} [data-field="availability"]', "在线", 15)
        # The broker restarts: the page says so, reconnects and subscribes again by itself.
        broker.stop()
        lost = '#conn-status[data-state="reconnecting"]'
        wait_page(chrome, lambda: chrome.find_elements("css selector", lost), 15, lost)
        broker.start()
        shows(chrome, "#conn-status", f"已连接: ws://127.0.0.1:{ws_port}", 20)
        pub.connected.wait(10)
        pub.client.publish("fleet/north/dock-r/availability", "offline", qos=1, retain=True)
        shows(chrome, f'{card} [data-field="availability"]', "离线", 15)
    finally:
        server.stop()


def test_the_read_only_dashboard_user_of_the_shipped_acl_logs_in_from_the_form(
    make_broker, subscribe, chrome, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """docs/dashboard.md's set-up: the WebSocket listener and the `dashboard` user of
    docs/mosquitto-acl.example; the password is typed, never kept by the page."""
    ws_port = free_port()
    passwd = password_file(tmp_path, {"dock-01": "pw-station", "dashboard": "pw-dash"})
    acl = ROOT / "docs" / "mosquitto-acl.example"
    broker = make_broker(
        extra=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        f"listener {ws_port} 127.0.0.1\nprotocol websockets\n"
    )
    station = subscribe(broker, "nothing/#", auth=("dock-01", "pw-station"))
    station.client.publish("evidence/dock-01/availability", "online", qos=1, retain=True)
    server = DashboardServer(dashboard_dir()).start()
    try:
        chrome.get(server.url(f"ws://127.0.0.1:{ws_port}") + "&user=dashboard&lang=en")
        # No password yet: the broker refuses, and the page says why ...
        wait_page(chrome, lambda: "Not authorized" in (text_of(chrome, "#conn-status") or ""),
                  15, "Not authorized")  # fmt: skip
        assert chrome.find_element("id", "conn-status").get_attribute("data-state") == "error"
        # ... and does not retry with the same credentials (MQTT.js's reconnect period is 3 s).
        chrome.execute_script(
            "window.seen = []; new MutationObserver(() => window.seen.push("
            "document.getElementById('conn-status').dataset.state))"
            ".observe(document.getElementById('conn-status'), {attributes: true});"
        )
        time.sleep(3.5)
        assert chrome.execute_script("return window.seen") == []
        chrome.find_element("id", "password").send_keys("pw-dash")
        chrome.find_element("id", "connect").click()
        shows(chrome, "#conn-status", f"connected: ws://127.0.0.1:{ws_port}", 15)
        shows(chrome, f'{_card("dock-01")} [data-field="availability"]', "online", 15)
        kept = chrome.execute_script("return JSON.stringify(localStorage)")
        assert "pw-dash" not in kept and "dashboard" in kept
        assert "pw-dash" not in chrome.current_url
    finally:
        server.stop()


def test_dashboard_code_only_reads_and_never_builds_html() -> None:
    js = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "dashboard").glob("*.js")}
    assert set(js) == {"app.js", "i18n.js", "model.js", "view.js"}
    for name, text in js.items():
        for sink in (".publish(", "innerHTML", "outerHTML", "insertAdjacentHTML",
                     "document.write", "eval(", "new Function"):  # fmt: skip
            assert sink not in text, f"dashboard/{name} uses {sink}"
    vendor = ROOT / "dashboard" / "vendor"
    assert (vendor / "mqtt.LICENSE.md").read_text().startswith("The MIT License")
    assert re.search(r"MQTT\.js 5\.\d+\.\d+", (vendor / "README.md").read_text())


# --- evidence-agent demo --mqtt ----------------------------------------------------------------


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return q


def _wait_line(q: queue.Queue[str], pattern: str, timeout: float, seen: list[str]) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if m := re.search(pattern, line):
            return m
    raise AssertionError(f"no line matching {pattern!r} in {timeout} s:\n{''.join(seen)}")


def _ws_messages(ws_url: str, topic: str) -> tuple[mqtt.Client, dict[str, Any]]:
    u = urlparse(ws_url)
    got: dict[str, Any] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, transport="websockets",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.on_connect = lambda c, *_a: c.subscribe(topic)
    client.on_message = lambda _c, _u, m: got.__setitem__(m.topic, bytes(m.payload))
    client.connect(u.hostname or "127.0.0.1", u.port or 80, keepalive=10)
    client.loop_start()
    return client, got


def _closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_demo_mqtt_prints_the_dashboard_url_serves_it_and_the_broker_speaks_websockets(
    tmp_path: Path,
) -> None:
    require_tool("mosquitto")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "demo", "--mqtt", "--recorders", "1", "--clips", "1",
         "--seconds", "1", "--dir", str(tmp_path), "--hold", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    seen: list[str] = []
    client = None
    try:
        q = _lines(proc)
        url = _wait_line(q, r"^dashboard: (http://127\.0\.0\.1:\d+/index\.html\?\S+)$", 60, seen)[1]
        page = urlparse(url)
        ws_url = parse_qs(page.query)["broker"][0]
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", ws_url), url
        assert parse_qs(page.query)["prefix"] == ["evidence"]
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and b'src="app.js"' in r.read()
        base = f"{page.scheme}://{page.netloc}"
        with urllib.request.urlopen(f"{base}/vendor/mqtt.min.js", timeout=10) as r:
            assert r.read() == (ROOT / "dashboard" / "vendor" / "mqtt.min.js").read_bytes()
        # The broker takes a WebSocket client, and the demo's agent publishes to it.
        client, got = _ws_messages(ws_url, "evidence/#")
        deadline = time.monotonic() + 90
        rec = "evidence/demo-dock/recorders/ZFY1001/state"
        while time.monotonic() < deadline and not (
            got.get("evidence/demo-dock/availability") == b"online" and rec in got
        ):
            time.sleep(0.2)
        assert got.get("evidence/demo-dock/availability") == b"online", sorted(got)
        assert json.loads(got[rec])["battery"] == 90
        _wait_line(q, r"^dashboard live at http://", 120, seen)  # ingest done, still serving
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        out = "".join(seen) + "".join(iter_queue(q))
        assert proc.returncode == 0, out
        assert "verify: OK" in out
        assert _closed(page.port or 80) and _closed(urlparse(ws_url).port or 80)
    finally:
        if client is not None:
            client.loop_stop()
            client.disconnect()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def iter_queue(q: queue.Queue[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
