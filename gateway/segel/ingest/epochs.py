"""Which key a frame verifies under: the tracker's current key epoch, or (during a rotation's
transition, `segel keys rotate`) its previous one, possibly from the previous fleet secret.

The pipeline keeps one `Codecs` (a FrameCodec per device and epoch, derived once) and calls
`verify` for every frame after the registry lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from segel import protocol
from segel.ingest.codec import FrameCodec
from segel.protocol import FrameError, RejectReason
from segel.messages import BRIDGE, REVOKED_HEARD, Notice, Uplink
from segel.registry import Device, KeyRing


class Codecs:
    """FrameCodecs by (device, epoch), derived from the fleet secret on first use."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring
        self._cache: dict[tuple[int, int, bool], FrameCodec | None] = {}

    def get(self, dev_id: int, epoch: int, previous_secret: bool = False) -> FrameCodec | None:
        """None only for a previous secret the gateway was not given."""
        k = (dev_id, epoch, previous_secret)
        if k not in self._cache:
            key = (self.keyring.previous_key(dev_id, epoch) if previous_secret
                   else self.keyring.device_key(dev_id, epoch))
            self._cache[k] = FrameCodec(protocol.DeviceKeys.from_device_key(key)) if key is not None else None
        return self._cache[k]

    def current(self, dev_id: int, epoch: int) -> FrameCodec:
        c = self.get(dev_id, epoch)
        assert c is not None
        return c


Verified = tuple[int, FrameCodec, Device]


def verify(codecs: Codecs, frame: bytes, hdr: protocol.Header, device: Device, now: float,
           reread: Callable[[], Device | None]) -> Verified:
    """(the key epoch the frame's MAC verified under, that epoch's codec, the device record), or
    the FrameError of the current key. Decrypting is the caller's next step (`codec.decode`). A MAC failure re-reads the registry once (`reread`: the tracker
    may just have been re-keyed), then tries the previous epoch while the transition lasts."""
    dev_id = hdr.device_id
    codec = codecs.current(dev_id, device.key_epoch)
    try:
        codec.verify(frame, hdr)
        return device.key_epoch, codec, device
    except FrameError as e:
        if e.reason != RejectReason.BAD_MAC:
            raise
        first = e
    fresh = reread()
    if fresh is not None and fresh.key_epoch != device.key_epoch:  # re-keyed since the record was cached
        device, codec = fresh, codecs.current(dev_id, fresh.key_epoch)
        try:
            codec.verify(frame, hdr)
            return device.key_epoch, codec, device
        except FrameError as e2:
            if e2.reason != RejectReason.BAD_MAC:
                raise
            first = e2
    device = fresh or device
    if device.prev_epoch is not None and device.accepts_previous(now):
        old = codecs.get(dev_id, device.prev_epoch, device.prev_secret)
        if old is not None:
            try:
                old.verify(frame, hdr)
                return device.prev_epoch, old, device
            except FrameError:
                pass
    raise first


def revoked(device: Device, up: Uplink) -> tuple[str, Notice]:
    """A revoked tracker heard with its own key: the rejection's detail, and the notice (the
    custody judge raises revoked_tracker_heard) saying where it was heard."""
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(device.revoked_at or 0)) + " UTC"
    m = up.meta
    via = f"base station {m.base_id} via bridge {m.bridge_id}" if m and m.base_id else \
        (f"bridge {up.source.id}" if up.source is not None and up.source.kind == BRIDGE else f"topic {up.topic}")
    detail = f"tracker {device.hex} was revoked {when} ({device.revoked_reason or 'no reason'}); heard through {via}"
    return detail, Notice(REVOKED_HEARD, up.received_at, device.device_id, None,
                          {"via": via, "revoked": when, "reason": device.revoked_reason or "",
                           "rssi": m.rssi if m else None})
