"""Bad brokers: TLS, credentials, MQTT 3.1.1 only. The agent keeps ingesting, logs one clear
line per connection state, and works once the broker does."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from fixtures.mosquitto import V311Gate, free_port, make_tls, password_file, tls_listener
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, wait_ledger

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"


def _lines(caplog, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "agent.mqtt.connection" and text in r.getMessage()
    ]


def test_tls_with_ca_and_client_certificate(
    make_broker, make_station, subscribe, tmp_path: Path
) -> None:
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    broker = make_broker(extra=tls_listener(port, tls), tls_port=port)
    station = make_station(
        mqtt_config(
            broker.tls_url,
            tls_ca_file=str(tls["ca.pem"]),
            tls_cert_file=str(tls["client.pem"]),
            tls_key_file=str(tls["client.key"]),
        )
    )
    sub = subscribe(broker, f"{P}/#")  # a dashboard on the plain listener
    with running(station):
        sub.wait_for(lambda m: m.topic == f"{P}/availability" and m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 1)
        sub.wait_for(lambda m: m.topic == f"{P}/events" and m.json()["type"] == "ingest.completed")


def test_tls_expected_but_listener_is_plain(broker, make_station, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="agent.mqtt")
    tls = make_tls(tmp_path / "tls")
    url = broker.url.replace("mqtt://", "mqtts://")
    station = make_station(mqtt_config(url, tls_ca_file=str(tls["ca.pem"])))
    with running(station):
        drop_volume(station, tmp_path, "ZFY0001", 2)
        wait_ledger(station, SPOOLED, 2)  # ingest does not wait for the broker
        time.sleep(3)  # several retries
    [line] = _lines(caplog, "TLS handshake")
    assert "is the port a TLS listener" in line


def test_credentials_from_credentials_directory(
    make_broker, make_station, subscribe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tmp_path / "users"
    users.mkdir()
    passwd = password_file(users, {"station": "s3cret"})
    broker = make_broker(extra=f"allow_anonymous false\npassword_file {passwd}\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_username").write_text("station\n")
    (creds / "mqtt_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    station = make_station(mqtt_config(broker.url))
    sub = subscribe(broker, f"{P}/availability", auth=("station", "s3cret"))
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")


def test_wrong_password_one_clear_line_and_ingest_goes_on(
    make_broker, make_station, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="agent.mqtt")
    users = tmp_path / "users"
    users.mkdir()
    passwd = password_file(users, {"station": "s3cret"})
    broker = make_broker(extra=f"allow_anonymous false\npassword_file {passwd}\n")
    secrets = tmp_path / "agent.secrets"
    secrets.write_text("MQTT_USERNAME=station\nMQTT_PASSWORD=wrong\n")
    secrets.chmod(0o600)
    station = make_station(mqtt_config(broker.url) + f'\n[credentials]\nfile = "{secrets}"\n')
    with running(station):
        drop_volume(station, tmp_path, "ZFY0001", 2)
        wait_ledger(station, SPOOLED, 2)
        time.sleep(3)
    [line] = _lines(caplog, "refused the connection")
    assert "MQTT_USERNAME / MQTT_PASSWORD" in line
    assert "wrong" not in caplog.text  # the password never reaches a log


def test_falls_back_to_mqtt_311(broker, make_station, subscribe, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="agent.mqtt")
    gate = V311Gate(broker.port)
    try:
        station = make_station(mqtt_config(f"mqtt://127.0.0.1:{gate.port}"))
        sub = subscribe(broker, f"{P}/#")
        with running(station):
            sub.wait_for(lambda m: m.topic == f"{P}/availability" and m.payload == b"online")
            drop_volume(station, tmp_path, "ZFY0001", 1)
            sub.wait_for(
                lambda m: m.topic == f"{P}/events" and m.json()["type"] == "ingest.completed"
            )
    finally:
        gate.close()
    assert gate.refused_v5 >= 1
    assert _lines(caplog, "falling back to MQTT 3.1.1")
    assert _lines(caplog, "(MQTT 3.1.1)")


def test_unusable_mqtt_settings_leave_the_agent_running_without_mqtt(
    make_station, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO)
    station = make_station(
        mqtt_config("mqtt://127.0.0.1:1")
        + f'\n[credentials]\nfile = "{tmp_path / "missing.secrets"}"\n'
    )
    with running(station) as daemon:
        assert daemon.mqtt is None
        drop_volume(station, tmp_path, "ZFY0001", 1)
        wait_ledger(station, SPOOLED, 1)
    assert "MQTT status plane disabled: credentials.file" in caplog.text
