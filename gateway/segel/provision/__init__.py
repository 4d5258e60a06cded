"""Provisioning: fleet settings and secret, device configs, images, flashing, checks, labels, pairing.

Modules (each one concern; the `segel` commands in segel/commands/ only turn flags into calls):
  settings    the fleet folder, fleet.toml, `init_fleet`, `copy_fleet`
  private     owner-only files and folders for everything that holds key material
  devconfig   `provision`, `reimage`, configs validated by the firmware's segelfw.config
  partitions  ESP-IDF partition tables read out of MicroPython .bins (ESP32 at 0x1000, S3 at 0)
  fsregion    where each MicroPython release (1.24 to 1.28) mounts its filesystem
  packages    the micropython-lib package cache in the index's layout: `fetch`, `resolve`
  roles       which firmware modules a tracker or a base station needs
  image       mpy-cross compilation and the littlefs image, formatted as MicroPython formats it
  builder     `ImageBuilder`: images for registered devices; `bench`
  flash       `plan` / `FlashPlan.describe` (dry run) / `execute` / `flash_many` through esptool's API
  probe       the MicroPython code `segel check` runs on a tracker
  check       `run_probe`: the booted tracker's report over mpremote
  checklist   the first-board checklist: measured, expected, PASS/FAIL, what to do
  labels      PDF label sheets with QR codes
  pairing     trackers to boxes, from arguments or a CSV of scans
See docs/provisioning.md.
"""
