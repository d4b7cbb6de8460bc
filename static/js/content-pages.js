/* Landing-page editor: confirm before removing a block; warn before leaving with unsaved edits. */
(function () {
  "use strict";
  var form = document.getElementById("page-form");
  if (!form) return;
  var dirty = document.querySelector(".lp-unsaved") !== null;
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    dirty = false;
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
})();
