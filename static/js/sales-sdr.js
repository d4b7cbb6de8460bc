// Keeps the SLA countdowns ("due in 3 h 20 min" / "overdue 2 h") ticking without a reload.
// The words come from the page (#sla-words), already translated on the server.
(function () {
  "use strict";
  function fill(template, values) {
    return template.replace(/%\((\w)\)d/g, function (_m, key) { return String(values[key]); });
  }
  function span(words, seconds) {
    var minutes = Math.floor(Math.max(seconds, 0) / 60);
    var d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
    if (d) return fill(words.dh, { d: d, h: h });
    if (h) return m ? fill(words.hm, { h: h, m: m }) : fill(words.h, { h: h });
    return fill(words.m, { m: m });
  }
  function tick() {
    var source = document.getElementById("sla-words");
    if (!source) return;
    var words = source.dataset, now = Date.now();
    document.querySelectorAll(".sla[data-due]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.due) - now) / 1000);
      var text = left < 0 ? words.overdue.replace("%(t)s", span(words, -left))
                          : words.dueIn.replace("%(t)s", span(words, left));
      el.textContent = text;
      el.classList.remove("sla-ok", "sla-soon", "sla-overdue");
      el.classList.add(left < 0 ? "sla-overdue" : left <= 86400 ? "sla-soon" : "sla-ok");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 30000); });
})();
