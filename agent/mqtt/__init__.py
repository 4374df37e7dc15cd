"""The MQTT status plane for operations dashboards (see docs/mqtt.md).

service (what the daemon starts) wires a connection (paho, TLS, LWT), the outbox drainer
(events, QoS 1, deleted after PUBACK), the state publisher (retained station, recorder,
compliance, custody, fleet ratio and Home Assistant discovery topics) and the command
processor. Imported only when `mqtt.url` is set, so paho stays out of an MQTT-less agent.
"""
