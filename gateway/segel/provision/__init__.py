"""Provisioning: fleet settings and secret, device configs, images, flashing, checks, labels, pairing.

Modules (each one concern; the `segel` commands in segel/commands/ are thin wrappers):
  settings    the fleet folder, fleet.toml, `init_fleet`
  devconfig   `provision`, `reimage`, configs validated by the firmware's segelfw.config
  partitions  ESP-IDF partition tables read out of MicroPython .bins (ESP32 at 0x1000, S3 at 0)
  packages    the micropython-lib package cache in the index's layout: `fetch`, `resolve`
  image       mpy-cross compilation and the littlefs image
  builder     `ImageBuilder`: images for registered devices; `bench`
  flash       `plan` / `FlashPlan.describe` (dry run) / `execute` through esptool's API
  check       `run_probe`: the booted tracker's identity and self-test over mpremote
  labels      PDF label sheets with QR codes
  pairing     trackers to boxes, from arguments or a CSV of scans
See docs/provisioning.md.
"""
