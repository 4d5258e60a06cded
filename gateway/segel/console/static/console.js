// Segel console: what every page shares. Small vanilla JavaScript; pages work without it where they can.
"use strict";
window.Segel = (function () {
  const body = document.body;
  const csrf = () => body.dataset.csrf || "";

  // The language switch submits itself (a button is shown without JavaScript).
  document.querySelectorAll("select[data-autosubmit]").forEach((s) =>
    s.addEventListener("change", () => s.form.submit()));

  // POST form data with the CSRF token; resolves to the response text, rejects with the server's message.
  async function post(url, data) {
    const form = new URLSearchParams(data || {});
    form.set("csrf", csrf());
    const r = await fetch(url, { method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch" } });
    const text = await r.text();
    if (!r.ok) throw new Error(text || r.statusText);
    return text;
  }

  function banner(text, bad) {
    const b = document.getElementById("banner");
    if (!b) return;
    b.hidden = !text;
    b.textContent = text || "";
    b.classList.toggle("bad", !!bad);
  }

  const text = JSON.parse((document.getElementById("segel-text") || {}).textContent || "{}");

  // Live updates (Server-Sent Events). The browser reconnects by itself and sends the last event id,
  // so the server replays what was missed. handlers: {alert(d), boxes(d)}.
  function live(since, handlers) {
    const es = new EventSource("/events" + (since ? "?since=" + encodeURIComponent(since) : ""));
    let down = false;
    es.addEventListener("open", () => { if (down) banner(""); down = false; });
    es.addEventListener("error", () => { down = true; banner(text.reconnecting, false); });
    es.addEventListener("gateway", (e) => {
      const g = JSON.parse(e.data);
      if (g.running === false) banner(text.gateway_down.replace("%(when)s", g.at_text || new Date(g.at * 1000).toLocaleString()), true);
      else if (g.running === null) banner(text.gateway_never, false);
      else banner("");
    });
    es.addEventListener("reload", () => location.reload());
    es.addEventListener("logout", () => { location.href = "/login?next=" + encodeURIComponent(location.pathname); });
    for (const [name, fn] of Object.entries(handlers || {}))
      es.addEventListener(name, (e) => fn(JSON.parse(e.data), e));
    window.addEventListener("beforeunload", () => es.close());
    return es;
  }

  return { csrf, post, banner, live, text };
})();
