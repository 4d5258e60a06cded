"""Ingest: verify, dedupe, decode and mark uplinks, keep per-device state, and hand accepted frames to the judges."""
