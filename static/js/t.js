/* LeadLoop tracker: <script async src="https://<leadloop>/t.js" data-key="pk_…"></script>
 * Sends page views (SPA routes too), outbound/asset clicks, read time and your own events
 * to <script origin>/api/v1/collect in batches. window.leadloop.track/identify; calls made
 * before loading wait in the snippet's stub queue. No dependencies, no eval. */
(function (w, d) {
  "use strict";
  var stub = w.leadloop;
  if (stub && stub.loaded) return; // the snippet was pasted twice
  var script = d.currentScript || d.querySelector('script[data-key][src*="/t.js"]');
  var KEY = script && script.getAttribute("data-key");
  if (!KEY || !w.URL || !w.URLSearchParams) return; // very old browsers: no tracking

  var ENDPOINT = script.getAttribute("data-endpoint") || new URL(script.src, location.href).origin + "/api/v1/collect";
  var COOKIE = "ll_aid";
  var TWO_YEARS = 2 * 365 * 24 * 3600;
  var FLUSH_MS = 3000;
  var MAX_BATCH = 50; // well under a site's default limit of 100 events per request
  var MAX_QUEUE = 500; // events kept while the collector cannot be reached
  var TYPES = ["page_view", "click", "content_view", "custom", "form_submit", "download", "share", "identify"];
  var ASSET = /\.(pdf|docx?|xlsx?|pptx?|zip)$/i;
  var UTM = ["source", "medium", "campaign", "term", "content"];

  // --- storage that may be refused (private mode, blocked cookies): never throw ---------
  function store(kind, key, value) {
    try {
      var s = w[kind];
      if (value === undefined) return s.getItem(key);
      s.setItem(key, value);
    } catch (e) { /* storage unavailable */ }
    return null;
  }

  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    var b = new Uint8Array(16);
    if (w.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64; // version 4
    b[8] = (b[8] & 63) | 128; // variant 10
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // --- the anonymous visitor id: first-party cookie, localStorage as the fallback -------
  var ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  function cookieId() {
    var m = d.cookie.match(/(?:^|;\s*)ll_aid=([^;]+)/);
    return m && ID_RE.test(m[1]) ? m[1] : null;
  }
  var storedId = store("localStorage", COOKIE);
  var aid = cookieId() || (storedId && ID_RE.test(storedId) ? storedId : null) || uuid();
  var cookieDomain = script.getAttribute("data-cookie-domain");
  // Written again on every page so the two years count from the last visit.
  try {
    d.cookie = COOKIE + "=" + aid + "; max-age=" + TWO_YEARS + "; path=/; SameSite=Lax" +
      (cookieDomain ? "; domain=" + cookieDomain : "") + (location.protocol === "https:" ? "; Secure" : "");
  } catch (e) { /* cookies blocked */ }
  store("localStorage", COOKIE, aid);

  // --- UTM parameters of the landing URL, kept for the browser session -----------------
  var utm = null;
  var params = new URLSearchParams(location.search);
  UTM.forEach(function (k) {
    var v = params.get("utm_" + k);
    if (v) (utm = utm || {})[k] = v.slice(0, 200);
  });
  if (utm) store("sessionStorage", "ll_utm", JSON.stringify(utm));
  else try { utm = JSON.parse(store("sessionStorage", "ll_utm") || "null"); } catch (e) { utm = null; }

  // --- events and batches --------------------------------------------------------------
  var queue = [];
  var timer = 0;
  var backoff = FLUSH_MS;
  var lastUrl = pageUrl();
  var referrer = d.referrer;

  function pageUrl() {
    // A fragment is a new page only for hash routers (#/path, #!/path).
    return /^#!?\//.test(location.hash) ? location.href : location.href.split("#")[0];
  }

  function event(type, properties) {
    return {
      id: uuid(),
      type: type,
      occurred_at: new Date().toISOString(),
      url: location.href,
      referrer: referrer,
      title: d.title,
      utm: utm || {},
      properties: properties || {},
    };
  }

  function push(ev) {
    queue.push(ev);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    if (queue.length >= MAX_BATCH) flush(false);
    else if (!timer) timer = setTimeout(function () { flush(false); }, FLUSH_MS);
  }

  function send(body, leaving) {
    var json = JSON.stringify(body);
    // sendBeacon cannot set headers, so the key rides in the URL; text/plain keeps it a
    // "simple" request (no CORS preflight, which a beacon cannot make).
    if (leaving && navigator.sendBeacon) {
      try {
        if (navigator.sendBeacon(ENDPOINT + "?key=" + encodeURIComponent(KEY), new Blob([json], { type: "text/plain" }))) return;
      } catch (e) { /* fall through to fetch */ }
    }
    if (!w.fetch) return;
    fetch(ENDPOINT, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      keepalive: leaving && json.length < 60000,
      headers: { "Content-Type": "application/json", "X-LeadLoop-Key": KEY },
      body: json,
    }).then(function (r) {
      if (r.status >= 500 || r.status === 429) throw new Error(String(r.status));
      backoff = FLUSH_MS;
    }).catch(function () {
      // Event ids make a resend harmless: the collector drops what it has seen.
      queue = body.events.concat(queue).slice(0, MAX_QUEUE);
      backoff = Math.min(backoff * 2, 60000);
      clearTimeout(timer);
      timer = setTimeout(function () { flush(false); }, backoff);
    });
  }

  function flush(leaving) {
    clearTimeout(timer);
    timer = 0;
    while (queue.length) {
      send({ key: KEY, anonymous_id: aid, events: queue.splice(0, MAX_BATCH) }, leaving);
    }
  }

  // --- read time: seconds the page was visible, reported when it is hidden ------------
  var visibleSince = d.visibilityState === "visible" ? Date.now() : 0;
  var readMs = 0;
  function reportRead() {
    if (visibleSince) readMs += Date.now() - visibleSince;
    visibleSince = d.visibilityState === "visible" ? Date.now() : 0;
    var seconds = Math.round(readMs / 1000);
    if (seconds >= 1) {
      var ev = event("content_view", { seconds: seconds });
      ev.seconds = seconds;
      push(ev);
    }
    readMs = 0;
  }
  function onHide() {
    reportRead();
    visibleSince = 0;
    flush(true);
  }
  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState === "hidden") onHide();
    else if (!visibleSince) visibleSince = Date.now();
  });
  w.addEventListener("pagehide", onHide);

  // --- page views, single-page apps included ------------------------------------------
  function routeChanged() {
    var url = pageUrl();
    if (url === lastUrl) return;
    reportRead(); // the time belongs to the page being left
    referrer = lastUrl;
    lastUrl = url;
    push(event("page_view"));
  }
  var pushState = history.pushState;
  history.pushState = function () {
    var result = pushState.apply(this, arguments);
    routeChanged();
    return result;
  };
  w.addEventListener("popstate", routeChanged);

  // --- outbound and asset clicks --------------------------------------------------------
  function onClick(e) {
    if (e.type === "auxclick" && e.button !== 1) return;
    var el = e.target && e.target.closest && e.target.closest("a[href],[data-ll-asset]");
    if (!el) return;
    var assetId = el.getAttribute("data-ll-asset");
    var href = el.href || el.getAttribute("href") || "";
    var url = null;
    if (href) try { url = new URL(href, location.href); } catch (err) { /* not a URL */ }
    var kind = null;
    if (assetId !== null || (url && ASSET.test(url.pathname))) kind = "asset";
    else if (url && /^https?:$/.test(url.protocol) && url.hostname !== location.hostname) kind = "outbound";
    if (!kind) return;
    var props = { href: url ? url.href : href, text: (el.innerText || el.textContent || "").trim().slice(0, 200), kind: kind };
    if (assetId) props.asset_id = assetId;
    push(event("click", props));
    flush(true); // the browser may be about to leave the page
  }
  d.addEventListener("click", onClick, true);
  d.addEventListener("auxclick", onClick, true);

  // --- the public API -------------------------------------------------------------------
  var api = {
    loaded: true,
    /** track("custom", {...}) or track("webinar_signup", {...}): a name that is not one
     *  of the built-in types is sent as a custom event with properties.name. */
    track: function (type, properties) {
      var props = {};
      for (var k in properties || {}) if (Object.prototype.hasOwnProperty.call(properties, k)) props[k] = properties[k];
      type = String(type || "custom");
      var name = "";
      if (TYPES.indexOf(type) < 0 || type === "identify") {
        if (type !== "identify") name = props.name = type.slice(0, 100);
        type = "custom";
      }
      var ev = event(type, props);
      if (name) ev.name = name;
      push(ev);
    },
    /** identify({email: "…", phone: "…"}, signature): signature is the hex HMAC-SHA256
     *  your server computed with the site's signing secret (see the console). */
    identify: function (identifiers, signature) {
      if (!identifiers || typeof identifiers !== "object") return;
      var ev = event("identify");
      ev.identifiers = identifiers;
      ev.signature = String(signature || "");
      push(ev);
      flush(false); // at once: what follows on the page should already count for them
    },
    anonymousId: function () { return aid; },
    flush: function () { flush(false); },
  };
  w.leadloop = api;

  queue.push(event("page_view"));
  flush(false); // the first view goes at once: many visitors leave within seconds

  // Calls made before the script loaded, in order.
  (stub && stub.q || []).forEach(function (call) {
    if (typeof api[call[0]] === "function") api[call[0]].apply(api, call[1]);
  });
})(window, document);
