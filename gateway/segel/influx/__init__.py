"""InfluxDB: the schema, every line the gateway writes, the durable outbox and the writers that drain it."""
