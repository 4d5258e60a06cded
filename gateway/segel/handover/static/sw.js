// Service worker of the handover app: the app's page and files come from the cache when the phone
// has no connection, so an officer can open it, fill receipts and queue them offline. The API is
// never cached: receipts wait in the page's IndexedDB queue instead.
"use strict";
const CACHE = "segel-handover-1";
const SHELL = ["/handover/", "/static/handover/receipt.js", "/static/handover/receipt.css",
  "/static/handover/vendor/jsQR.js", "/static/console.css", "/static/console.js",
  "/handover/manifest.webmanifest", "/handover/icon-192.png"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/handover/api/")) return;
  if (url.pathname === "/handover/") {
    // the page: fresh when online (the session's token, new places), the cached copy offline
    e.respondWith(fetch(e.request).then((r) => {
      if (r.ok && !r.redirected) {
        const copy = r.clone();
        caches.open(CACHE).then((c) => c.put("/handover/", copy));
      }
      return r;
    }).catch(() => caches.match("/handover/")));
    return;
  }
  if (url.pathname.startsWith("/static/") || url.pathname.startsWith("/handover/")) {
    // files: the cache first (they carry a version in their URL), else the network, kept for next time
    e.respondWith(caches.match(e.request).then((hit) => hit || caches.match(e.request, { ignoreSearch: true })
      .then((old) => fetch(e.request).then((r) => {
        if (r.ok) {
          const copy = r.clone();
          caches.open(CACHE).then((c) => c.put(e.request, copy));
        }
        return r;
      }).catch(() => old))));
  }
});
