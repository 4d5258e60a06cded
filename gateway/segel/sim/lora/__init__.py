"""The simulator's LoRa path: trackers -> simulated air -> base stations -> `segel bridge` -> broker.

`segel simulate --uplink lora` / `segel demo --uplink lora` replace the trackers' WiFi path
(segel.sim.fleet.MqttHub, WifiLink) with this one:

- each tracker's wake cycle sends through the firmware's own LoRa link (`segelfw.link.LoraLink`:
  dwell check, channel, `configure()` and `send()` on a micropython-lib lora radio); only the radio
  chip is simulated (`simhw.SimRadio`, the lora driver's synchronous API);
- the radio puts each transmission, at the tracker's virtual time, on a `segel.radio.channel.Channel`
  (time on air at the configured SF, collisions, fading) through `LoraAir`, which adds geography:
  a base station hears a tracker within its range (log-distance path loss with shadowing), two
  transmissions on the same channel and SF that overlap in time destroy each other at every base
  station that hears both (pure ALOHA, no capture effect), and a scripted dead zone means that
  nobody hears the tracker;
- every base station is the firmware's base-station role (`segelfw.basestation.BaseStation`) writing
  COBS+CRC serial records into a pseudo-terminal, read by a real `segel bridge` (`Bridge`, pyserial,
  durable buffer, QoS 1) that publishes the documented JSON on `segel/bridge/<id>/up` to the same
  broker as the gateway; the gateway's ack comes back on `segel/bridge/<id>/down`, through the
  bridge and the serial line, and the base station transmits it if the tracker's receive window
  is still open (its own real-time check); the air then hands it to the tracker's radio inside
  that window. A frame nobody heard, or whose ack was lost or late, stays in the tracker's flash
  queue and goes out again at its next wake: the firmware's own behaviour.

Base stations stand at the KPU warehouse, at every PPK office and at as many PPS (village) offices
as it takes for every TPS to be in range (`place_sites`). docs/demo.md states the radio
assumptions and the measured figures.
"""

from segel.sim.lora.hub import LoraHub, LoraTracker, gateway_figures
from segel.sim.lora.radio import LoraOptions, Site, place_sites

__all__ = ["LoraHub", "LoraOptions", "LoraTracker", "Site", "gateway_figures", "place_sites"]
