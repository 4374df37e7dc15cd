"""The MQTT contract on paper matches the code: command schemas, topics, config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.actions.check_config import deep_check
from agent.config import loader as config_mod
from agent.core.errors import ConfigError, MqttConfigError
from agent.mqtt.connection import parse_url
from agent.mqtt.handlers import command_schemas
from agent.mqtt.topics import VERBS, Topics

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@pytest.mark.parametrize("verb", VERBS)
def test_command_schema_in_docs_is_the_one_the_agent_enforces(verb: str) -> None:
    on_disk = json.loads((SCHEMAS / f"command-{verb}.json").read_text(encoding="utf-8"))
    assert on_disk == command_schemas()[verb], (
        f"docs/schemas/command-{verb}.json is stale: regenerate it from "
        "agent.mqtt.handlers.command_schemas()"
    )


def test_every_schema_is_valid_json_schema() -> None:
    import jsonschema

    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)


def test_topics_never_carry_wildcards() -> None:
    t = Topics("evidence", "dock-1")
    assert t.recorder("a/b+#c") == "evidence/dock-1/recorders/a_b__c/state"
    assert t.unit_ratio("U 1") == "evidence/units/U_1/ratio"
    assert t.split_recorder_topic("evidence/dock-2/recorders/ZFY1/state") == ("dock-2", "ZFY1")
    assert t.split_recorder_topic("evidence/units/U1/ratio") is None
    assert t.verb_of("evidence/dock-1/cmd/tag") == "tag"
    assert t.ha_config("spool_free") == "homeassistant/sensor/evidence_dock-1/spool_free/config"


def test_broker_url() -> None:
    assert str(parse_url("mqtts://broker.example")) == "mqtts://broker.example:8883"
    assert parse_url("mqtt://10.0.0.2:1884").port == 1884
    with pytest.raises(MqttConfigError, match="must not carry a user name"):
        parse_url("mqtt://user:pw@host")


def test_check_config_names_mqtt_problems(tmp_path: Path) -> None:
    cfg = config_mod.load(
        None,
        environ={
            "EVIDENCE_AGENT__STATION__ID": "units",
            "EVIDENCE_AGENT__STATION__DATA_DIR": str(tmp_path),
            "EVIDENCE_AGENT__MQTT__URL": "mqtts://broker:8883",
            "EVIDENCE_AGENT__MQTT__TLS_CA_FILE": str(tmp_path / "missing-ca.pem"),
            "EVIDENCE_AGENT__MQTT__RECONNECT_MIN_SECONDS": "30",
            "EVIDENCE_AGENT__MQTT__RECONNECT_MAX_SECONDS": "10",
        },
    )
    keys = dict(deep_check(cfg))
    assert "missing-ca.pem does not exist" in keys["mqtt.tls_ca_file"]
    assert "reconnect_min_seconds" in keys["mqtt.reconnect_max_seconds"]
    assert "reserved" in keys["station.id"]


def test_progress_faster_than_once_a_second_is_rejected() -> None:
    with pytest.raises(ConfigError, match="progress_seconds"):
        config_mod.load(None, environ={"EVIDENCE_AGENT__MQTT__PROGRESS_SECONDS": "0.2"})
