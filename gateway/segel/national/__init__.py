"""Beyond one regency: each regency's gateway pushes what the nation needs to a national tier.

Regency side: `capture` records every item that must flow up (alert lifecycle changes, custody
changes, box pairings, downsampled positions, ledger checkpoints, district summaries) in the
gateway's own SQLite, in the transaction that causes it; `uplink` pushes them, store-and-forward,
to the national message layer (NATS with JetStream, spoken to over MQTT). National side:
`ingest` takes them off the bus into PostgreSQL (`store`), exactly once and in order per
regency, and answers each regency with a receipt. `view` reads the national store for people;
`federation` writes the deployment files; `local` starts a national tier on loopback for
trials, tests and `segel bench national`. See docs/national.md.
"""
