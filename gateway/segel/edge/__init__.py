"""The MQTT edge: broker connection, topics, and turning MQTT messages into uplinks and acks into MQTT messages."""
