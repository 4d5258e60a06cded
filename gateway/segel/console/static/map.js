// The live map: boxes coloured by custody state (clustered when zoomed out), places, corridors, outlines.
"use strict";
(function () {
  const el = document.getElementById("map");
  if (!el) return;
  const conf = JSON.parse(document.getElementById("map-config").textContent);
  const COLORS = { alert: "#d50000", warehouse: "#6d4c41", ppk: "#8e24aa", pps: "#00897b", tps: "#43a047",
    transit: "#1e88e5", returning: "#f9a825", unheard: "#9e9e9e" };
  const PLACE_COLORS = { warehouse: "#6d4c41", ppk: "#8e24aa", pps: "#00897b", tps: "#43a047", zone: "#546e7a" };
  const RANK = ["alert", "returning", "transit", "unheard", "warehouse", "ppk", "pps", "tps"];

  const map = L.map(el, { preferCanvas: true, zoomControl: true, maxZoom: 18, minZoom: 5 }).setView([1.0, 117.2], 8);
  const renderer = L.canvas({ padding: 0.3 });
  if (conf.tiles) L.tileLayer(conf.tiles, { maxZoom: 18, attribution: conf.attribution || "" }).addTo(map);
  else el.classList.add("no-basemap");

  const outlines = L.layerGroup().addTo(map);
  const corridors = L.layerGroup().addTo(map);
  const places = L.layerGroup().addTo(map);
  const clusters = L.markerClusterGroup({
    chunkedLoading: true, disableClusteringAtZoom: 13, maxClusterRadius: 50, showCoverageOnHover: false,
    iconCreateFunction(cluster) {
      const kids = cluster.getAllChildMarkers();
      let worst = "tps";
      for (const m of kids) if (RANK.indexOf(m.options.state) < RANK.indexOf(worst)) worst = m.options.state;
      return L.divIcon({ html: `<div style="background:${COLORS[worst]}"><span>${kids.length}</span></div>`,
        className: "marker-cluster seg-cluster", iconSize: L.point(36, 36) });
    },
  }).addTo(map);
  const boxes = new Map(); // box -> {data, marker}

  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  function icon(state) {
    return L.divIcon({ className: "seg-box", iconSize: [14, 14],
      html: `<span class="dot st-${state}" style="width:14px;height:14px;display:block"></span>` });
  }

  function filters() {
    return { district: document.getElementById("f-district").value,
      states: new Set(Array.from(document.querySelectorAll(".f-state:checked")).map((i) => i.value)) };
  }
  function visible(b, f) {
    return b.lat != null && f.states.has(b.state) && (!f.district || b.district === f.district);
  }

  function counts() {
    const f = filters(), n = {};
    let all = 0;
    for (const { data: b } of boxes.values()) {
      if (f.district && b.district !== f.district) continue;
      n[b.state] = (n[b.state] || 0) + 1; all++;
    }
    for (const s of Object.keys(COLORS)) { const c = document.getElementById("n-" + s); if (c) c.textContent = (n[s] || 0).toLocaleString(document.documentElement.lang); }
    document.getElementById("n-all").textContent = all.toLocaleString(document.documentElement.lang);
  }

  function redraw() {
    const f = filters(), add = [];
    clusters.clearLayers();
    for (const entry of boxes.values()) if (visible(entry.data, f)) add.push(entry.marker);
    clusters.addLayers(add);
    el.dataset.boxes = String(add.length);
    counts();
  }

  function upsert(b) {
    let e = boxes.get(b.box);
    if (!e) {
      const m = L.marker([b.lat || 0, b.lon || 0], { icon: icon(b.state), state: b.state, title: b.box });
      m.bindPopup(() => {
        const div = document.createElement("div");
        div.className = "box-card";
        div.textContent = "…";
        fetch("/boxes/" + encodeURIComponent(b.box) + "/card", { credentials: "same-origin" })
          .then((r) => r.text()).then((h) => { div.innerHTML = h; });
        return div;
      }, { minWidth: 260 });
      e = { data: b, marker: m };
      boxes.set(b.box, e);
      return true;
    }
    const moved = e.data.state !== b.state || e.data.lat !== b.lat || e.data.lon !== b.lon;
    e.data = b;
    if (b.lat != null) e.marker.setLatLng([b.lat, b.lon]);
    e.marker.options.state = b.state;
    e.marker.setIcon(icon(b.state));
    return moved;
  }

  function placeLayer(f) {
    const p = f.properties, g = f.geometry;
    const tip = `<b>${esc(p.name)}</b><br>${esc(conf.kinds[p.kind] || p.kind)} · ${esc(p.code)}`;
    if (g.type === "Point") {
      return L.circle([g.coordinates[1], g.coordinates[0]], { radius: p.radius_m, renderer, weight: 1,
        color: PLACE_COLORS[p.kind] || "#555", fillOpacity: p.kind === "tps" ? 0.25 : 0.12 }).bindTooltip(tip);
    }
    if (g.type === "LineString") {
      return L.polyline(g.coordinates.map((c) => [c[1], c[0]]), { renderer, weight: 2, opacity: 0.55,
        color: /sungai|river|laut|sea|boat|kapal/i.test(p.name) ? "#0277bd" : "#616161" }).bindTooltip(tip, { sticky: true });
    }
    return L.polygon(g.coordinates[0].map((c) => [c[1], c[0]]), { renderer, weight: 1, color: PLACE_COLORS[p.kind] || "#555",
      fillOpacity: 0.1 }).bindTooltip(tip);
  }

  async function load() {
    const status = document.getElementById("map-status");
    const t0 = performance.now();
    const [pl, ol, bx] = await Promise.all(["/api/places.geojson", "/api/outlines.geojson", "/api/boxes.json"].map(
      (u) => fetch(u, { credentials: "same-origin" }).then((r) => { if (!r.ok) throw new Error(u + ": " + r.status); return r.json(); })));
    let nPlaces = 0, nCorr = 0;
    for (const f of ol.features) {
      L.geoJSON(f, { style: { color: f.properties.kind === "district" ? "#37474f" : "#90a4ae", weight: f.properties.kind === "district" ? 1.5 : 0.7,
        dashArray: f.properties.kind === "district" ? null : "3 3", fillColor: "#eceff1", fillOpacity: f.properties.kind === "district" ? 0.35 : 0.0 },
        renderer }).bindTooltip(esc(f.properties.name), { sticky: true }).addTo(outlines);
    }
    for (const f of pl.features) {
      if (f.properties.kind === "corridor") { placeLayer(f).addTo(corridors); nCorr++; } else { placeLayer(f).addTo(places); nPlaces++; }
    }
    for (const b of bx.boxes) upsert(b);
    redraw();
    const pts = bx.boxes.filter((b) => b.lat != null).map((b) => [b.lat, b.lon]);
    if (ol.features.length) map.fitBounds(L.geoJSON(ol).getBounds(), { padding: [10, 10] });
    else if (pts.length) map.fitBounds(pts);
    el.dataset.places = String(nPlaces);
    el.dataset.corridors = String(nCorr);
    el.dataset.loadedMs = String(Math.round(performance.now() - t0));
    el.dataset.ready = "1";
    if (status) status.textContent = "";
  }

  for (const [id, layer] of [["l-places", places], ["l-corridors", corridors], ["l-outlines", outlines]]) {
    document.getElementById(id).addEventListener("change", (e) => (e.target.checked ? layer.addTo(map) : layer.remove()));
  }
  document.getElementById("f-district").addEventListener("change", () => {
    redraw();
    const d = document.getElementById("f-district").value;
    const pts = Array.from(boxes.values()).filter((e) => e.data.lat != null && (!d || e.data.district === d)).map((e) => [e.data.lat, e.data.lon]);
    if (d && pts.length) map.fitBounds(pts, { maxZoom: 12 });
  });
  document.querySelectorAll(".f-state").forEach((i) => i.addEventListener("change", redraw));

  load().then(() => {
    Segel.live(conf.cursor, {
      boxes(d) {
        let changed = false;
        for (const b of d.boxes) changed = upsert(b) || changed;
        if (changed) redraw();
      },
    });
  }).catch((err) => { document.getElementById("map-status").textContent = err.message; });
  window.segelMap = { map, boxes };
})();
