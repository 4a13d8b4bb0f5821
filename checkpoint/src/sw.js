// Offline after the first load: the page and the QR decoder come from this cache when the
// network fails. The lists are not cached here: the page keeps the last list whose
// signature it checked (a list cached unchecked could replace a good one).

const CACHE = "checkpoint-v1";
const SHELL = [
  "./",
  "index.html",
  "app.js",
  "verify.js",
  "style.css",
  "config.json",
  "vendor/zxing-wasm/es/reader/index.js",
  "vendor/zxing-wasm/es/share.js",
  "vendor/zxing-wasm/reader/zxing_reader.wasm",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.includes("/lists/")) return;
  // Network first, so a new page version arrives when online; the cached copy otherwise.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});
