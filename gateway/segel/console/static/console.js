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

  return { csrf, post, banner };
})();
