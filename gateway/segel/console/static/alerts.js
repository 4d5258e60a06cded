// The alert desk: rows arrive and change live; critical open alerts stay on top and sound until acknowledged.
"use strict";
(function () {
  const tbody = document.getElementById("alert-rows");
  if (!tbody) return;
  const filters = document.getElementById("alert-filters");
  const errorBox = document.getElementById("act-error");
  const soundBtn = document.getElementById("sound");
  let audio = null;

  function fromHTML(html) {
    const t = document.createElement("tbody");
    t.innerHTML = html.trim();
    return t.firstElementChild;
  }

  function wanted(row) {
    if (!filters) return true;
    const f = new FormData(filters);
    const st = f.get("state") || "active", d = row.dataset;
    if (st === "active" ? !(d.state === "open" || d.state === "acknowledged") || d.severity === "info" : st !== "all" && st !== d.state) return false;
    for (const k of ["severity", "kind", "district"]) if (f.get(k) && f.get(k) !== d[k]) return false;
    return true;
  }

  const rank = (r) => (r.dataset.state === "open" && r.dataset.severity === "critical" ? 0 : 1);
  function sort() {
    const rows = Array.from(tbody.querySelectorAll("tr.alert-row"));
    rows.sort((a, b) => rank(a) - rank(b) || parseFloat(b.dataset.raised) - parseFloat(a.dataset.raised));
    rows.forEach((r) => tbody.appendChild(r));
    const n = document.getElementById("alert-count");
    if (n) n.dataset.count = rows.length;
    const none = document.getElementById("no-alerts");
    if (none) none.hidden = rows.length > 0;
  }

  function put(html, flash) {
    const row = fromHTML(html);
    const old = tbody.querySelector(`tr[data-id="${row.dataset.id}"]`);
    if (!wanted(row) && filters) { if (old) old.remove(); sort(); return; }
    if (old) old.replaceWith(row); else tbody.appendChild(row);
    if (flash) row.classList.add("flash");
    sort();
  }

  function beep() {
    if (!audio) return;
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; o.connect(g); g.connect(audio.destination);
    g.gain.setValueAtTime(0.2, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    o.start(); o.stop(audio.currentTime + 0.6);
  }
  if (soundBtn) soundBtn.addEventListener("click", () => {
    if (audio) { audio.close(); audio = null; } else { audio = new AudioContext(); beep(); }
    soundBtn.textContent = audio ? soundBtn.dataset.on : soundBtn.dataset.off;
  });
  // While a critical alert is open and unacknowledged, remind every minute.
  setInterval(() => { if (tbody.querySelector('tr[data-state="open"][data-severity="critical"]')) beep(); }, 60000);

  tbody.addEventListener("submit", async (e) => {
    const form = e.target.closest("form[data-act]");
    if (!form) return;
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      put(await Segel.post(form.action, data), false);
      errorBox.hidden = true;
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  });

  Segel.live(tbody.dataset.cursor, {
    alert(d) {
      put(d.html, true);
      if (d.alert.severity === "critical" && d.state === "open" && (d.event === "raised" || d.event === "renotify")) beep();
    },
  });
})();
