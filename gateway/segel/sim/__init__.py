"""The fleet simulator and the demo: virtual trackers running the firmware's own cycle against the real gateway."""
