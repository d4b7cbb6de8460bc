/* Copy buttons: <button data-copy="#id"> copies an input's value or an element's text.
   No dependencies. */
(function () {
  "use strict";
  function copied(button) {
    var label = button.getAttribute("data-copied") || "Copied";
    var original = button.textContent;
    button.textContent = label;
    setTimeout(function () { button.textContent = original; }, 1600);
  }
  document.addEventListener("click", function (e) {
    var button = e.target && e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) return;
    e.preventDefault();
    var isField = typeof input.value === "string";
    var text = isField ? input.value : input.textContent.trim();
    function fallback() {
      if (isField) {
        input.focus();
        input.select();
        input.setSelectionRange(0, text.length);
      } else {
        var range = document.createRange();
        range.selectNodeContents(input);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      try { if (document.execCommand("copy")) copied(button); } catch (err) { /* selected: the user copies */ }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, fallback);
    } else {
      fallback();
    }
  });
})();
