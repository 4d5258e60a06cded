"""The NMEA parser agrees with pynmeagps, and rejects garbage with a reason."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pynmeagps import GET, NMEAMessage, NMEAReader
from segelfw import nmea
from simhw.gnss import nmea_sentence

lat_s = st.floats(min_value=-89.99, max_value=89.99, allow_nan=False)
lon_s = st.floats(min_value=-179.99, max_value=179.99, allow_nan=False)


def _e7(x: float) -> int:
    return round(x * 1e7)


@settings(max_examples=300, deadline=None)
@given(lat=lat_s, lon=lon_s, talker=st.sampled_from(["GP", "GN", "GL", "GA", "BD"]),
       hdop=st.floats(min_value=0.5, max_value=30, allow_nan=False), sv=st.integers(0, 24))
def test_gga_agrees_with_pynmeagps(lat: float, lon: float, talker: str, hdop: float, sv: int) -> None:
    raw = NMEAMessage(talker, "GGA", GET, time="08:00:01", lat=lat, NS="N" if lat >= 0 else "S", lon=lon,
                      EW="E" if lon >= 0 else "W", quality=1, numSV=sv, HDOP=round(hdop, 1), alt=35.2, altUnit="M",
                      sep=48.0, sepUnit="M").serialize()
    ref = NMEAReader.parse(raw)
    got = nmea.parse(raw)
    assert got["type"] == "GGA" and got["quality"] == 1 and got["sats"] == sv
    assert abs(got["lat_e7"] - _e7(ref.lat)) <= 1
    assert abs(got["lon_e7"] - _e7(ref.lon)) <= 1
    assert got["hdop_x10"] == round(ref.HDOP * 10)
    assert got["tod"] == 8 * 3600 + 1


@settings(max_examples=300, deadline=None)
@given(lat=lat_s, lon=lon_s, spd=st.floats(min_value=0, max_value=150, allow_nan=False),
       day=st.dates(min_value=__import__("datetime").date(2000, 1, 1), max_value=__import__("datetime").date(2099, 12, 31)),
       secs=st.integers(0, 86399))
def test_rmc_agrees_with_pynmeagps(lat: float, lon: float, spd: float, day, secs: int) -> None:
    import datetime as dt

    t = dt.time(secs // 3600, secs // 60 % 60, secs % 60)
    raw = NMEAMessage("GN", "RMC", GET, lat=lat, lon=lon, status="A", spd=round(spd, 1), cog=90.0, date=day,
                      time=t).serialize()
    ref = NMEAReader.parse(raw)
    got = nmea.parse(raw)
    assert got["valid"] is True
    assert abs(got["lat_e7"] - _e7(ref.lat)) <= 1 and abs(got["lon_e7"] - _e7(ref.lon)) <= 1
    assert got["unix"] == int(dt.datetime.combine(day, t, tzinfo=dt.timezone.utc).timestamp())
    assert got["speed_kmh"] == round(ref.spd * 1.852)


def test_gsa_agrees_with_pynmeagps() -> None:
    raw = NMEAMessage("GP", "GSA", GET, opMode="A", navMode=3, PDOP=1.6, HDOP=0.9, VDOP=1.3).serialize()
    got = nmea.parse(raw)
    assert got == {"type": "GSA", "fix": 3, "pdop_x10": 16, "hdop_x10": 9, "vdop_x10": 13}


def test_no_fix_sentences_parse_without_position() -> None:
    gga = nmea.parse(nmea_sentence("GPGGA,080001.00,,,,,0,00,99.99,,,,,,"))
    assert gga["quality"] == 0 and "lat_e7" not in gga
    rmc = nmea.parse(nmea_sentence("GPRMC,080001.00,V,,,,,,,150127,,,N"))
    assert rmc["valid"] is False and "lat_e7" not in rmc


def test_hemispheres_and_edges() -> None:
    # equator/prime meridian, south-west, exact whole minutes
    assert nmea.parse(nmea_sentence("GPGGA,000000,0000.0000,N,00000.0000,E,1,05,1.0,0,M,0,M,,"))["lat_e7"] == 0
    g = nmea.parse(nmea_sentence("GPGGA,000000,3351.4070,S,07038.8927,W,1,05,1.0,0,M,0,M,,"))
    assert g["lat_e7"] == -(33 * 10**7 + round(51.4070 / 60 * 1e7))
    assert g["lon_e7"] == -(70 * 10**7 + round(38.8927 / 60 * 1e7))
    g = nmea.parse(nmea_sentence("GPGGA,000000,0030.0000,S,11706.0000,E,1,05,1.0,0,M,0,M,,"))
    assert (g["lat_e7"], g["lon_e7"]) == (-5000000, 1171000000)


def test_garbage_is_rejected_with_a_reason() -> None:
    good = nmea_sentence("GPGGA,080001.00,0030.00000,S,11706.00000,E,1,08,0.9,35.2,M,48.0,M,,")
    cases = {
        b"": "empty line",
        b"GPGGA,1,2*00": "does not start with $",
        good.replace(b"*", b"#"): "no checksum",
        good[:-4] + b"00\r\n": "bad checksum",
        good[:-3] + b"\r\n": "checksum must be 2 hex digits at the end",
        good[:-4] + b"ZZ\r\n": "checksum is not hex",
        b"$GP\xffGGA*00": "non-printable character",
        b"$" + b"A" * 120 + b"*00": "line too long",
        nmea_sentence("GPVTG,1,2,3"): "unsupported sentence VTG",
        nmea_sentence("GPGGA,080001,0030.0,S,11706.0,E,1"): "GGA has too few fields",
        nmea_sentence("GPGGA,080001,0060.0001,S,11706.0000,E,1,08,0.9,35.2,M,48.0,M,,"): "latitude minutes over 60",
        nmea_sentence("GPGGA,080001,9130.0000,S,11706.0000,E,1,08,0.9,35.2,M,48.0,M,,"): "latitude out of range",
        nmea_sentence("GPGGA,080001,0030.0000,X,11706.0000,E,1,08,0.9,35.2,M,48.0,M,,"): "bad latitude hemisphere",
        nmea_sentence("GPGGA,080001,00a0.0000,S,11706.0000,E,1,08,0.9,35.2,M,48.0,M,,"): "bad latitude",
        nmea_sentence("GPGGA,250001,0030.0000,S,11706.0000,E,1,08,0.9,35.2,M,48.0,M,,"): "bad time",
        nmea_sentence("GPRMC,080001,Q,,,,,,,150127,,,N"): "bad RMC status",
        nmea_sentence("GPRMC,080001,A,0030.0,S,11706.0,E,0.0,0.0,151327,,,A"): "bad date",
    }
    for line, reason in cases.items():
        try:
            nmea.parse(line)
        except nmea.NmeaError as e:
            assert e.reason == reason, (line, e.reason)
        else:
            raise AssertionError(f"{line!r} was accepted")


def test_reader_survives_a_noisy_uart() -> None:
    good = nmea_sentence("GPGGA,080001.00,0030.00000,S,11706.00000,E,1,08,0.9,35.2,M,48.0,M,,")
    rmc = nmea_sentence("GPRMC,080001.00,A,0030.00000,S,11706.00000,E,10.0,87.5,150127,,,A")
    stream = b"\x00\xff$GPG" + good + b"$GPRMC,08000" + good[:20] + b"\r\n" + rmc + b"x" * 300 + b"\r\n"
    r = nmea.Reader()
    for i in range(0, len(stream), 7):  # UART chunks split sentences anywhere
        r.feed(stream[i:i + 7])
    assert r.fix.valid() and (r.fix.lat_e7, r.fix.lon_e7) == (-5000000, 1171000000)
    assert r.fix.speed_kmh == 19 and r.fix.hdop_x10 == 9 and r.fix.unix is not None
    assert r.good == 2
    assert r.rejects == {"truncated sentence": 3, "no checksum": 1, "line too long": 1}


def test_days_from_civil() -> None:
    import calendar

    for y, m, d in [(1970, 1, 1), (2000, 2, 29), (2024, 12, 31), (2027, 1, 15), (2100, 3, 1)]:
        assert nmea.days_from_civil(y, m, d) * 86400 == calendar.timegm((y, m, d, 0, 0, 0))
