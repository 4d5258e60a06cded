"""Alert delivery beyond MQTT: signed webhooks."""
