# The tracker's real boot (firmware/main.py) on real MicroPython (the WebAssembly port), with the
# ESP32's hardware modules replaced at the lowest layer by the stand-ins in tests/firmware/standins
# (machine, esp32, lora, network, umqtt.simple) and tests/firmware/mp (socket, cryptolib, the
# virtual clock, the flash with a size limit). Run by tests/firmware/test_mp_boot.py:
#   node tools/mpy-node/run.mjs --mount firmware:/fw --mount standins:/standins --mount mp:/mp
#        --mount DEVICE:/ --path /fw --path /standins --path /mp tests/firmware/mp/boot_mp.py
# The device folder holds config.json, boards/ and scenario.json; prints one "RESULT <json>" line.
import json
import os
import sys

SC = json.loads(open("/scenario.json").read())

import vtime  # noqa: E402  (first: everything below must see the virtual clock)

VT = vtime.install(SC.get("start", 1800000000), real=bool(SC.get("net")))


class _Os:
    """The port's os plus urandom(), which the ESP32 port has and the WebAssembly port lacks."""

    def __init__(self, real):
        for k in dir(real):
            if not k.startswith("__"):
                setattr(self, k, getattr(real, k))
        self._n = 0

    def urandom(self, n):
        self._n += 1
        return bytes((self._n * 73 + i * 151) & 0xFF for i in range(n))


sys.modules["os"] = _Os(os)

import esp32  # noqa: E402
import flashfs  # noqa: E402
import lora  # noqa: E402
import machine  # noqa: E402
import network  # noqa: E402

if SC.get("net"):  # real TCP through run.mjs --net (a real broker), instead of the scripted one
    import netsocket

    sys.modules["socket"] = netsocket
import socket  # noqa: E402
from umqtt import simple  # noqa: E402

VT.hooks.append(machine._wdt_check)

# --- the board as the scenario has it ---
machine._reset_cause = SC.get("reset_cause", machine.PWRON_RESET)
machine._rtc_memory = bytes.fromhex(SC.get("rtc_hex", ""))
machine._wake_reason = SC.get("wake_reason", 0)
machine._wake_pins = tuple(SC.get("wake_pins", ()))
if not SC.get("has_wake_pins", True):  # MicroPython before 1.29 has no machine.wake_pins()
    del machine.wake_pins
for pin, level in SC.get("pins", {}).items():
    machine._pin_levels[int(pin)] = level
machine._uart_feed[:] = [c.encode() for c in SC.get("uart", [])]
if SC.get("uart_error"):
    def _uart_broken(self, nbytes=None):
        raise OSError(5)  # EIO
    machine.UART.read = _uart_broken
    machine.UART.any = lambda self: 1
absent = SC.get("i2c_absent", [])
if absent:
    _rd, _wr = machine.I2C.readfrom_mem, machine.I2C.writeto_mem

    def _nack_rd(self, addr, memaddr, nbytes, addrsize=8):
        if addr in absent:
            raise OSError(19)  # ENODEV: nobody acknowledges the address
        return _rd(self, addr, memaddr, nbytes)

    def _nack_wr(self, addr, memaddr, buf, addrsize=8):
        if addr in absent:
            raise OSError(19)
        return _wr(self, addr, memaddr, buf)

    machine.I2C.readfrom_mem = _nack_rd
    machine.I2C.writeto_mem = _nack_wr
for k, v in SC.get("i2c", {}).items():
    a, r = k.split(":")
    machine._i2c_regs[(int(a, 16), int(r, 16))] = v
lora._replies[:] = [bytes.fromhex(h) for h in SC.get("replies", [])]
if SC.get("gateway", True):
    # a gateway in range: each uplink is acknowledged, signed with the firmware's own encoder
    # (downlink counter 1000 + the uplink's: always above the last one the tracker accepted)
    import cryptolib

    from segelfw import protocol as _P

    _cfg = json.loads(open("/config.json").read())
    _keys = _P.Keys(bytes.fromhex(_cfg["key"]), block=lambda b: b)
    _keys.block = cryptolib.aes(_keys.enc_key, 1).encrypt
    _dev = int(_cfg["device_id"], 16)

    def _ack(packet):
        c = packet[4] << 16 | packet[5] << 8 | packet[6]
        return [_P.encode(_keys, _P.T_ACK, _dev, 1000 + c, 0, _P.ack_body(c, 0))]

    lora._responder = _ack
lora._fail_init = SC.get("radio_fail_init", False)
lora._tx_hang = SC.get("radio_tx_hang", False)
network._ap.update(SC.get("ap", {}))
if not SC.get("net"):
    socket._broker.update(SC.get("broker", {}))
simple._VERSION = tuple(SC.get("umqtt_version", (1, 6, 0)))

# --- the flash: the firmware's data/ folder, restored from the last boot, with a size limit ---
os.mkdir("/flashdata")
for name, hx in SC.get("flash", {}).items():
    f = open("/flashdata/" + name, "wb")
    f.write(bytes.fromhex(hx))
    f.close()
os.mount(flashfs.QuotaFS("/flashdata", SC.get("flash_bytes", 1 << 20)), "/data")
os.chdir("/")

# --- boot ---
OUT = {"deepsleep_ms": None, "wdt_reset": False, "error": None}
src = open("/fw/main.py").read()
try:
    exec(src, {"__name__": "__main__"})
except machine._DeepSleep as e:
    OUT["deepsleep_ms"] = e.ms
except machine._WatchdogReset as e:
    OUT["wdt_reset"] = True
except BaseException as e:  # noqa: BLE001 - what would leave the board at the REPL
    OUT["error"] = repr(e)
    sys.print_exception(e)

flash = {}
for name in os.listdir("/flashdata"):
    f = open("/flashdata/" + name, "rb")
    flash[name] = f.read().hex()
    f.close()
OUT.update({
    "rtc_hex": machine._rtc_memory.hex(),
    "flash": flash,
    "sent": [s["packet"].hex() for s in lora._sent],
    "wake": {k: list(v) if isinstance(v, tuple) else v for k, v in esp32._wake.items()},
    "wdt_feeds": machine._wdt_feeds,
    "awake_ms": VT.ms,
    "end_unix": VT.unix_ms // 1000 + (OUT["deepsleep_ms"] or 0) // 1000,
    "wifi": [list(x) for x in network._log],
    "broker": {k: socket._broker[k] for k in ("published", "connects", "subscribed")} if not SC.get("net") else {},
})
print("RESULT " + json.dumps(OUT))
