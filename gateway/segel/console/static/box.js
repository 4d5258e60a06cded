// A box's track on a small map: the route, its seal events and its TPS.
"use strict";
(function () {
  const el = document.getElementById("boxmap");
  if (!el) return;
  const d = JSON.parse(document.getElementById("box-track").textContent);
  const map = L.map(el, { preferCanvas: true, maxZoom: 18 });
  const first = d.track.length ? d.track[d.track.length - 1] : d.tps ? [d.tps[0], d.tps[1]] : [1.0, 117.2];
  map.setView(first, 13); // a view before any layer: circles need one to measure their bounds
  const layers = [];
  if (d.track.length) {
    layers.push(L.polyline(d.track, { color: "#1e88e5", weight: 3 }).addTo(map));
    layers.push(L.circleMarker(d.track[d.track.length - 1], { radius: 7, color: "#0d47a1", fillOpacity: 0.9 }).addTo(map));
  }
  for (const [lat, lon, ev] of d.seals)
    layers.push(L.circleMarker([lat, lon], { radius: 6, color: "#d50000", fillOpacity: 0.9 }).bindTooltip(ev).addTo(map));
  if (d.tps) layers.push(L.circle([d.tps[0], d.tps[1]], { radius: d.tps[2], color: "#43a047" }).addTo(map));
  if (layers.length) map.fitBounds(L.featureGroup(layers).getBounds(), { padding: [20, 20], maxZoom: 15 });
  el.dataset.points = String(d.track.length);
  // context under the track: district and village outlines, corridors and places (no basemap needed)
  const renderer = L.canvas();
  const ctx = L.layerGroup().addTo(map);
  Promise.all(["/api/outlines.geojson", "/api/places.geojson"].map((u) =>
    fetch(u, { credentials: "same-origin" }).then((r) => r.json()))).then(([ol, pl]) => {
    L.geoJSON(ol, { renderer, style: (f) => ({ color: f.properties.kind === "district" ? "#37474f" : "#90a4ae",
      weight: 1, fillColor: "#eceff1", fillOpacity: f.properties.kind === "district" ? 0.35 : 0 }) }).addTo(ctx);
    for (const f of pl.features) {
      const g = f.geometry, p = f.properties;
      if (g.type === "LineString") L.polyline(g.coordinates.map((c) => [c[1], c[0]]), { renderer, color: "#757575", weight: 2, opacity: 0.6 }).addTo(ctx);
      else if (g.type === "Point") L.circle([g.coordinates[1], g.coordinates[0]], { renderer, radius: p.radius_m, weight: 1, color: "#2e7d32", fillOpacity: 0.1 }).bindTooltip(p.name).addTo(ctx);
    }
    ctx.eachLayer((l) => l.bringToBack && l.bringToBack());
    layers.forEach((l) => l.bringToFront && l.bringToFront());
    el.dataset.context = "1";
  });
})();
