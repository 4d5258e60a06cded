"""Segel gateway: verified ingest, custody rules and alerts for tracked ballot boxes."""

__version__ = "0.1.0"
