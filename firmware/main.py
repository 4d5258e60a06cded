# Segel tracker entry point (MicroPython runs /main.py at every boot and deep-sleep wake).
#
# 1. read config.json and boards/<board>.json, validate both: a bad config stops here with a
#    message naming the field; the tracker never boots half-configured (it stays at the REPL for
#    the technician who provisioned it)
# 2. role "tracker": segelfw.hw.tracker.run(): one wake cycle, then deep sleep, whatever happens
#    role "base":    segelfw.hw.basestation.main(): the base station, forever
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
        except OSError as e:
            raise C.ConfigError(field, path + " cannot be read (" + str(e) + "); re-provision the tracker")
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
        from segelfw.hw import basestation

        return basestation.main(cfg, board)
    _mkdir(root + "data")
    from segelfw.hw import tracker

    return tracker.run(cfg, board, root)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - last resort: an error outside the cycle (memory, import)
        print("segel: boot failed: " + repr(e))
        import machine

        machine.deepsleep(300000)
