"""Radio: the simulated LoRa channel and the radio planner (how many trackers a channel carries)."""
