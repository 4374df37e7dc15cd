"""The shipped Mosquitto ACL example, loaded into a real broker: stations publish their own
topics, dashboards read, and only the command console may send commands."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from fixtures.consoles import add_console
from fixtures.mosquitto import password_file
from fixtures.mqtt_agent import mqtt_config, running

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "docs" / "mosquitto-acl.example"
P = "evidence/dock-01"


def test_shipped_acl_only_the_console_may_send_commands(
    make_broker, make_station, subscribe, tmp_path: Path
) -> None:
    users = {"dock-01": "pw-station", "ops-console": "pw-console", "dashboard": "pw-dash"}
    passwd = password_file(tmp_path, users)
    broker = make_broker(extra=f"allow_anonymous false\npassword_file {passwd}\nacl_file {ACL}\n")
    secrets = tmp_path / "station.secrets"
    secrets.write_text("MQTT_USERNAME=dock-01\nMQTT_PASSWORD=pw-station\n")
    secrets.chmod(0o600)
    station = make_station(
        mqtt_config(broker.url)
        + f'\n[credentials]\nfile = "{secrets}"\n[fleet]\naggregate = true\n'
    )
    station.config_path.write_text(
        station.config_path.read_text().replace('id = "test-station"', 'id = "dock-01"')
    )
    key = add_console(station, "B001", "custodian")
    dashboard = subscribe(broker, "evidence/#", auth=("dashboard", "pw-dash"))
    console = subscribe(broker, f"{P}/reply/#", auth=("ops-console", "pw-console"))
    with running(station):
        dashboard.wait_for(lambda m: m.topic == f"{P}/availability" and m.payload == b"online")
        dashboard.wait_for(lambda m: m.topic == f"{P}/state")
        dashboard.publish(f"{P}/cmd/rescan", key.sign("rescan", {}, station="dock-01", rid="d"))
        signed = key.sign("rescan", {}, station="dock-01", rid="from-console")
        console.publish(f"{P}/cmd/rescan", signed)
        reply = console.wait_for(lambda m: m.topic == f"{P}/reply/rescan").json()
        time.sleep(0.5)
    assert reply["id"] == "from-console" and reply["ok"]
    assert len(console.on(f"{P}/reply/rescan")) == 1  # the dashboard's never reached the station
    db = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    ids = [
        json.loads(r[0])["request_id"]
        for r in db.execute("SELECT payload FROM custody WHERE type = 'command.mqtt'")
    ]
    db.close()
    assert ids == ["from-console"]
