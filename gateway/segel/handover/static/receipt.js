// Segel handover receipts on the officer's phone: scan the box label, fill the receipt, keep it in
// IndexedDB and send it when there is a connection. A receipt has an id made on the phone when it is
// confirmed, so sending it twice (a lost answer, a retry) records it once on the server.
"use strict";
(function () {
  const S = JSON.parse(document.getElementById("handover-strings").textContent);
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "segel.handover.csrf", OFFICER_KEY = "segel.handover.officer";
  let csrf = document.body.dataset.csrf || localStorage.getItem(TOKEN_KEY) || "";
  if (document.body.dataset.csrf) localStorage.setItem(TOKEN_KEY, document.body.dataset.csrf);

  // ---- the queue: IndexedDB, one record per receipt (its form, its photo, its state) ----
  function openDb() {
    return new Promise((ok, bad) => {
      const r = indexedDB.open("segel-handover", 1);
      r.onupgradeneeded = () => r.result.createObjectStore("receipts", { keyPath: "client_id" });
      r.onsuccess = () => ok(r.result);
      r.onerror = () => bad(r.error);
    });
  }
  async function store(mode, fn) {
    const db = await openDb();
    return new Promise((ok, bad) => {
      const t = db.transaction("receipts", mode);
      const req = fn(t.objectStore("receipts"));
      t.oncomplete = () => ok(req ? req.result : undefined);
      t.onerror = () => bad(t.error);
    });
  }
  const save = (r) => store("readwrite", (st) => st.put(r));
  const remove = (id) => store("readwrite", (st) => st.delete(id));
  const everything = () => store("readonly", (st) => st.getAll());

  // ---- the box label: a photo of it, decoded here (no network needed) ----
  async function imageData(file, maxSide) {
    const bmp = await createImageBitmap(file);
    const k = Math.min(1, maxSide / Math.max(bmp.width, bmp.height));
    const c = document.createElement("canvas");
    c.width = Math.round(bmp.width * k);
    c.height = Math.round(bmp.height * k);
    c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
    return c;
  }
  $("scan").addEventListener("change", async () => {
    const f = $("scan").files[0];
    if (!f) return;
    $("scanned").className = "scanned";
    try {
      const c = await imageData(f, 1400);
      const img = c.getContext("2d").getImageData(0, 0, c.width, c.height);
      const code = window.jsQR(img.data, c.width, c.height, { inversionAttempts: "attemptBoth" });
      if (!code) throw new Error(S.scan_failed);
      const text = code.data.trim();
      if (/^SGL-/i.test(text)) throw new Error(S.tracker_label);
      const parts = text.split(":");
      if (parts.length < 4 || parts[0].toUpperCase() !== "SGL1") throw new Error(S.not_box_label);
      const box = parts.slice(2, -1).join(":"), tracker = parts[parts.length - 1];
      $("label").value = text;
      $("box").value = box;
      $("scanned").textContent = S.scanned.replace("{box}", box).replace("{tracker}", tracker);
      $("scanned").classList.add("ok");
    } catch (e) {
      $("label").value = "";
      $("scanned").textContent = e.message || S.scan_failed;
      $("scanned").classList.add("bad");
    } finally {
      $("scan").value = "";
    }
  });
  $("box").addEventListener("input", () => { $("label").value = ""; });  // typed by hand: no label
  $("photo").addEventListener("change", () => $("photo-button").classList.toggle("chosen", !!$("photo").files[0]));

  // ---- the officer's own details stay on the phone for the next receipt ----
  const officer = JSON.parse(localStorage.getItem(OFFICER_KEY) || "{}");
  for (const k of ["name", "role", "id"]) if (officer[k]) $("officer-" + k).value = officer[k];
  if (officer.place && [...$("place").options].some((o) => o.value === officer.place)) $("place").value = officer.place;

  function position() {
    if (!$("use-position").checked || !navigator.geolocation) return Promise.resolve(null);
    return new Promise((ok) => navigator.geolocation.getCurrentPosition(
      (p) => ok({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy }),
      () => ok(null), { timeout: 5000, maximumAge: 120000, enableHighAccuracy: true }));
  }
  async function shrink(file) {  // a phone photo is 3-5 MB; 1600 px JPEG is enough to see a seal
    const c = await imageData(file, 1600);
    return new Promise((ok) => c.toBlob(ok, "image/jpeg", 0.8));
  }
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2));

  $("receipt-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("form-error").textContent = "";
    const v = (id) => $(id).value.trim();
    const seals = v("seals").split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean);
    const need = [["box", S.box], ["place", S.place], ["officer-name", S.officer_name],
      ["officer-role", S.officer_role], ["officer-id", S.officer_id]].filter(([id]) => !v(id)).map(([, t]) => t);
    if (!seals.length) need.push(S.seals);
    if (need.length) { $("form-error").textContent = S.missing.replace("{fields}", need.join(", ")); return; }
    let photo = null;
    if ($("photo").files[0]) {
      try { photo = await shrink($("photo").files[0]); } catch (e) { $("form-error").textContent = S.not_image; return; }
    }
    $("confirm").disabled = true;
    const client_id = uuid();
    const form = {
      client_id, label: v("label") || null, box: v("box"), place: v("place"),
      officer: { name: v("officer-name"), role: v("officer-role"), id_number: v("officer-id") },
      witness: v("witness-name") ? { name: v("witness-name"), role: v("witness-role"), id_number: v("witness-id") } : null,
      seals, condition: v("condition"), note: v("note") || null, confirmed_at: Date.now(), position: await position(),
    };
    localStorage.setItem(OFFICER_KEY, JSON.stringify({ name: form.officer.name, role: form.officer.role,
      id: form.officer.id_number, place: form.place }));
    await save({ client_id, form, photo, status: "queued", created: Date.now() });
    for (const id of ["box", "label", "witness-name", "witness-role", "witness-id", "seals", "note", "photo"]) $(id).value = "";
    $("photo-button").classList.remove("chosen");
    $("scanned").textContent = "";
    $("confirm").disabled = false;
    await render();
    flush();
  });

  // ---- sending: whatever is queued, oldest first, whenever there is a connection ----
  async function refreshToken() {
    try {
      const r = await fetch("/handover/api/session", { credentials: "same-origin" });
      if (r.status === 401) return "login";
      if (!r.ok) return false;
      csrf = (await r.json()).csrf;
      localStorage.setItem(TOKEN_KEY, csrf);
      return true;
    } catch (e) { return false; }
  }
  async function send(rec, again) {
    const body = new FormData();
    body.append("receipt", JSON.stringify(Object.assign({}, rec.form, { sent_at: Date.now() })));
    if (rec.photo) body.append("photo", rec.photo, "photo.jpg");
    let r;
    try {
      r = await fetch("/handover/api/receipts", { method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf } });
    } catch (e) { return { retry: true }; }  // no connection after all
    if (r.status === 401) return { login: true };
    let data = {};
    try { data = await r.json(); } catch (e) { /* not JSON: a proxy's page */ }
    if (r.status === 403 && !again) {
      const t = await refreshToken();  // the page may hold an older session's token: once with a fresh one
      if (t === "login") return { login: true };
      if (t) return send(rec, true);
    }
    if (r.ok) return { status: "sent", result: data };
    if (r.status >= 500 || r.status === 408 || r.status === 429) return { retry: true };
    return { status: "refused", error: data.error || r.statusText };
  }
  let flushing = false;
  async function flush() {
    showNet();
    if (flushing || !navigator.onLine) return;
    flushing = true;
    try {
      for (const rec of (await everything()).sort((a, b) => a.created - b.created)) {
        if (rec.status !== "queued") continue;
        const out = await send(rec, false);
        if (out.login) { loginBanner(); break; }
        if (out.retry) break;
        Object.assign(rec, out);
        if (out.status === "sent") rec.photo = null;  // recorded on the server: free the phone's space
        await save(rec);
        await render();
      }
    } finally { flushing = false; }
  }

  function loginBanner() {
    const b = $("banner");
    b.hidden = false;
    b.classList.add("bad");
    b.textContent = S.login + " ";
    const a = document.createElement("a");
    a.href = "/login?next=/handover/";
    a.textContent = S.sign_in;
    b.appendChild(a);
  }
  function showNet() {
    $("net").textContent = navigator.onLine ? S.online : S.offline;
    $("net").className = "net " + (navigator.onLine ? "on" : "off");
  }
  async function render() {
    const list = $("queue");
    list.textContent = "";
    const all = (await everything()).sort((a, b) => b.created - a.created);
    for (const rec of all) {
      const li = document.createElement("li");
      li.className = "rec " + rec.status;
      li.dataset.clientId = rec.client_id;
      const when = new Date(rec.form.confirmed_at).toLocaleString(document.documentElement.lang || "id",
        { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
      const head = document.createElement("div");
      head.className = "head";
      head.textContent = `${rec.form.box} · ${rec.form.place} · ${when}`;
      const st = document.createElement("div");
      st.className = "state";
      if (rec.status === "queued") st.textContent = S.queued;
      else if (rec.status === "refused") st.textContent = `${S.refused}: ${rec.error}`;
      else {
        const res = rec.result || {}, r = res.receipt || {};
        st.textContent = `${S.sent} (${r.id || ""}${res.duplicate ? ", " + S.duplicate : ""}): ` +
          (r.state === "linked" ? S.linked : S.pending) +
          (res.ledger_seq != null ? "; " + S.entry.replace("{seq}", res.ledger_seq) : "");
        for (const a of res.alerts || []) {
          const al = document.createElement("div");
          al.className = "alert sev-" + a.severity;
          al.textContent = `${S.alert}: ${a.title}. ${a.message}`;
          st.appendChild(al);
        }
      }
      li.append(head, st);
      if (rec.status === "refused") {
        const del = document.createElement("button");
        del.type = "button";
        del.textContent = S.delete;
        del.addEventListener("click", async () => { await remove(rec.client_id); render(); });
        li.appendChild(del);
      }
      list.appendChild(li);
    }
  }

  window.addEventListener("online", flush);
  window.addEventListener("offline", showNet);
  setInterval(flush, 20000);
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/handover/sw.js", { scope: "/handover/" })
    .catch(() => { /* still works while the page is open; only reloading offline needs it */ });
  render().then(flush);
  window.SegelHandover = { flush, everything };  // for people debugging on a phone (and the tests)
})();
