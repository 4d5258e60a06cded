# LoRa time-on-air (Semtech SX1276 datasheet s4.1.1.6 / AN1200.13) and region presets.
# Integer arithmetic in quarter symbols, the same on CPython and MicroPython.
try:
    from micropython import const
except ImportError:

    def const(x):
        return x


DWELL_LIMIT_US = const(400000)

# Channels in kHz. AS923-2: LoRa Alliance RP002-1.0.3, the AS923 plan shifted to 921.4 MHz for
# Indonesia; default channels 921.4 and 921.6, six more as TTN's AS_923_2 plan lists them.
# ID923: the 923.2-924.6 MHz plan that TTN maps to Indonesia (AS_923_925) and that Indonesian
# Meshtastic users (SG_923) run. Both keep the 400 ms uplink dwell limit (AS923 with DwellTime).
REGIONS = {
    "AS923-2": {
        "channels_khz": (921400, 921600, 921800, 922000, 922200, 922400, 922600, 922800),
        "default_channels": 2,
        "dwell_us": DWELL_LIMIT_US,
        "max_eirp_dbm": 16,
        "bw_khz": 125,
    },
    "ID923": {
        "channels_khz": (923200, 923400, 923600, 923800, 924000, 924200, 924400, 924600),
        "default_channels": 2,
        "dwell_us": DWELL_LIMIT_US,
        "max_eirp_dbm": 16,
        "bw_khz": 125,
    },
}


def ldro(sf, bw_khz):
    # low data rate optimisation: on when one symbol lasts 16 ms or more (SF11/12 at 125 kHz)
    return (1 << sf) * 1000 // bw_khz >= 16000


def payload_symbols(sf, payload_len, coding_rate=5, crc=True, implicit_header=False, bw_khz=125):
    de = 1 if ldro(sf, bw_khz) else 0
    num = 8 * payload_len - 4 * sf + 28 + (16 if crc else 0) - (20 if implicit_header else 0)
    den = 4 * (sf - 2 * de)
    n = -(-num // den) if num > 0 else 0  # ceil, never negative
    return 8 + n * coding_rate


def time_on_air_us(sf, payload_len, bw_khz=125, preamble=8, coding_rate=5, crc=True, implicit_header=False):
    quarter_symbols = 4 * preamble + 17 + 4 * payload_symbols(sf, payload_len, coding_rate, crc, implicit_header, bw_khz)
    # T_sym = 2^SF / BW; in microseconds: 2^SF * 1000 / bw_khz; times quarter symbols / 4
    return quarter_symbols * (1 << sf) * 1000 // (4 * bw_khz)


def max_payload(sf, limit_us=DWELL_LIMIT_US, bw_khz=125, preamble=8):
    best = -1
    for n in range(256):
        if time_on_air_us(sf, n, bw_khz, preamble) <= limit_us:
            best = n
    return best


def region(name):
    r = REGIONS.get(name)
    if r is None:
        raise ValueError("unknown region " + str(name) + "; known: " + ", ".join(sorted(REGIONS)))
    return r
