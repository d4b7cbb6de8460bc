/* LeadLoop form: a script tag loading this file shows the form where the tag stands. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var src = new URL("{{ form_url|escapejs }}");
  var here = new URL(window.location.href);
  src.searchParams.set("embed", "1");
  ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (name) {
    var value = here.searchParams.get(name);
    if (value) src.searchParams.set(name, value.slice(0, 200));
  });
  src.searchParams.set("u", window.location.href.slice(0, 1500));
  if (document.referrer) src.searchParams.set("r", document.referrer.slice(0, 1000));
  // The visitor id t.js keeps on this site: the submission joins their visits here.
  var aid = document.cookie.match(/(?:^|;\s*)ll_aid=([0-9a-f-]{36})/);
  if (aid) src.searchParams.set("aid", aid[1]);
  var frame = document.createElement("iframe");
  frame.src = src.toString();
  frame.title = "{{ title|escapejs }}";
  frame.setAttribute("scrolling", "no");
  frame.setAttribute("data-leadloop-form", "");
  frame.style.cssText =
    "display:block;width:100%;max-width:100%;border:0;height:480px;overflow:hidden;";
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || event.origin !== src.origin) return;
    var data = event.data || {};
    if (data.leadloop === "form-height") {
      var height = Number(data.height);
      if (isFinite(height) && height > 0) {
        frame.style.height = Math.min(Math.ceil(height), 20000) + "px";
      }
    } else if (data.leadloop === "form-redirect" && /^https?:\/\//.test(String(data.url))) {
      window.location.href = data.url;
    }
  });
})();
