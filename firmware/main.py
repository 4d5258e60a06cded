# Segel tracker entry point (MicroPython runs /main.py at every boot and deep-sleep wake).
#
# 1. read config.json and boards/<board>.json, validate both: a bad config stops here with a
#    message naming the field; the tracker never boots half-configured
# 2. role "tracker": build the drivers for the board, run one wake cycle, deep sleep
#    role "base":    the base-station firmware (segelfw.base, a separate module)
import json
import sys

from segelfw import config as C


def _read_json(path, field, what):
    try:
        f = open(path)
    except OSError:
        raise C.ConfigError(field, what + " " + path + " not found on the device; provision it (segel provision)")
    try:
        try:
            return json.loads(f.read())
        except ValueError:
            raise C.ConfigError(field, path + " is not valid JSON")
    finally:
        f.close()


def load(root=""):
    """-> (config, board), both checked. Raises ConfigError."""
    cfg = C.validate(_read_json(root + "config.json", "(file)", "config file"))
    board = _read_json(root + "boards/" + cfg["board"] + ".json", "board", "board file")
    C.check_board(board, cfg)
    return cfg, board


def _mkdir(path):
    import os

    try:
        os.mkdir(path)
    except OSError:
        pass


def main(root=""):
    try:
        cfg, board = load(root)
    except C.ConfigError as e:
        print("segel: CONFIG ERROR: " + str(e))
        print("segel: not starting. Fix config.json (or re-provision) and reset the board.")
        return None
    if cfg["role"] == "base":
        # base-station role: receive LoRa, talk to the gateway over USB serial
        from segelfw import base

        return base.main(cfg, board)

    from segelfw import cycle
    from segelfw.hw import board as hwboard

    _mkdir(root + "data")
    drivers = hwboard.build(board, cfg, root)
    lnk = None
    if cfg["wifi"] is not None:
        try:
            from segelfw.hw import wifi

            lnk = wifi.connect(cfg, drivers.clock)
        except (OSError, ImportError) as e:
            print("segel: depot WiFi/MQTT unavailable (" + str(e) + "), using LoRa")
    try:
        return cycle.run(drivers, cfg, lnk, board)
    except Exception as e:  # never stay awake on a bug: log, sleep, try again next interval
        print("segel: wake cycle failed:")
        sys.print_exception(e) if hasattr(sys, "print_exception") else print(repr(e))
        drivers.system.deepsleep(cfg["report_interval_s"] * 1000)
        return None


if __name__ == "__main__":
    main()
