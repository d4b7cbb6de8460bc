/* Read time on a shared page: counts only while the page is visible (Page Visibility
   API) and reports the total to /s/<token>/beat every 15 s and when the page is hidden
   or left, with navigator.sendBeacon. No dependencies. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var url = script.getAttribute("data-url");
  var view = parseInt(script.getAttribute("data-view") || "", 10);
  var key = script.getAttribute("data-key");
  if (!url || !view || !key) return;

  var d = document;
  var INTERVAL_MS = 15000;
  var readMs = 0;
  var visibleSince = d.visibilityState === "visible" ? Date.now() : 0;
  var lastSent = 0;

  function seconds() {
    return Math.round((readMs + (visibleSince ? Date.now() - visibleSince : 0)) / 1000);
  }

  function send() {
    var total = seconds();
    if (total <= lastSent) return; // nothing new: the server keeps the highest anyway
    lastSent = total;
    var body = JSON.stringify({ v: view, k: key, s: total });
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
    } catch (e) { /* fall through to fetch */ }
    try {
      fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
    } catch (e) { /* best effort: the next beat carries the total again */ }
  }

  function pause() {
    if (visibleSince) readMs += Date.now() - visibleSince;
    visibleSince = 0;
  }

  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState === "hidden") {
      pause();
      send();
    } else if (!visibleSince) {
      visibleSince = Date.now();
    }
  });
  window.addEventListener("pagehide", function () {
    pause();
    send();
  });
  setInterval(function () {
    if (visibleSince) send();
  }, INTERVAL_MS);
})();

/* The gate form's iframe tells its height ({leadloop: "form-height"}): fit it. */
(function () {
  "use strict";
  window.addEventListener("message", function (e) {
    var data = e.data;
    if (!data || data.leadloop !== "form-height" || typeof data.height !== "number") return;
    var frames = document.querySelectorAll("iframe.share-gate-frame");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === e.source) {
        frames[i].style.height = Math.max(120, Math.min(Math.round(data.height), 5000)) + "px";
        frames[i].style.minHeight = "0";
      }
    }
  });
})();
