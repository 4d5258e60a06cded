# LoRa time-on-air (Semtech SX1276 datasheet s4.1.1.6 / AN1200.13) and region presets.
# Integer arithmetic in quarter symbols, the same on CPython and MicroPython.
try:
    from micropython import const
except ImportError:

    def const(x):
        return x


DWELL_LIMIT_US = const(400000)

# Channels in kHz. AS923-2: LoRa Alliance RP002-1.0.3, the AS923 plan shifted down 1.8 MHz to
# 921.4 MHz "to support Indonesia" (hardware/radio.md); default channels 921.4 and 921.6, six
# more as TTN's AS_923_2 plan lists them. Every channel edge (centre +/- 62.5 kHz) lies inside
# 920-923 MHz, the band Indonesia's class licence gives LPWA; 16 dBm EIRP and the 400 ms dwell
# limit (hardware/radio.md cites both). There is no other Indonesian preset: a 923.2-924.6 MHz
# plan ("ID923", TTN's AS_923_925) lies outside 920-923 MHz and was removed.
REGIONS = {
    "AS923-2": {
        "channels_khz": (921400, 921600, 921800, 922000, 922200, 922400, 922600, 922800),
        "default_channels": 2,
        "dwell_us": DWELL_LIMIT_US,
        "max_eirp_dbm": 16,
        "bw_khz": 125,
        "band_khz": (920000, 923000),
    },
}
REMOVED = {"ID923": "923.2-924.6 MHz lies outside 920-923 MHz, the band Indonesia licenses for LPWA (hardware/radio.md)"}


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
        why = REMOVED.get(name)
        raise ValueError("unknown region " + str(name) + ("" if why is None else " (removed: " + why + ")")
                         + "; known: " + ", ".join(sorted(REGIONS)))
    return r
