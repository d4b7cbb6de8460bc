// Contact list: "select all on this page" and a count of ticked rows for bulk tagging.
// Works on the rows htmx swaps in, because it listens on the document.
(function () {
  "use strict";
  function boxes(form) {
    return Array.prototype.slice.call(form.querySelectorAll('input[name="ids"]'));
  }
  function refresh(form) {
    var ticked = boxes(form).filter(function (b) { return b.checked; }).length;
    var out = form.querySelector("[data-selected-count]");
    if (out) {
      out.hidden = ticked === 0;
      out.textContent = ticked ? (out.dataset.template || "%s").replace("%s", ticked) : "";
    }
    var all = form.querySelector("[data-check-all]");
    if (all) {
      var n = boxes(form).length;
      all.checked = n > 0 && ticked === n;
      all.indeterminate = ticked > 0 && ticked < n;
    }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("#bulk-form");
    if (!form) { return; }
    if (target.matches("[data-check-all]")) {
      boxes(form).forEach(function (b) { b.checked = target.checked; });
    }
    refresh(form);
  });
})();
