"""The recording of every uplink the gateway received, and its replay through the pipeline."""
