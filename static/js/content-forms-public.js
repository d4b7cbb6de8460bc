/* Public LeadLoop forms: one submit per click, the first error in view, and, inside an
   iframe, the page's height told to the parent ({leadloop: "form-height"}) and the
   redirect after submit handed to it ({leadloop: "form-redirect"}). */
(function () {
  "use strict";
  var embedded = document.body.classList.contains("embed") && window.parent !== window;

  function tellHeight() {
    if (!embedded) return;
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    window.parent.postMessage({ leadloop: "form-height", height: height }, "*");
  }

  var form = document.querySelector("form[data-ll-form]");
  if (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (!button) return;
      // The server keeps a second submit of this page from storing twice; this keeps the
      // visitor from waiting on two requests.
      setTimeout(function () { button.disabled = true; }, 0);
      setTimeout(function () { button.disabled = false; }, 8000);
    });
    var invalid = form.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus({ preventScroll: embedded });
  }

  var thanks = document.querySelector("[data-ll-thanks][data-redirect]");
  if (thanks) {
    var url = thanks.getAttribute("data-redirect");
    if (/^https?:\/\//.test(url)) {
      if (embedded) {
        try {
          window.top.location.href = url; // our own landing page: same origin
        } catch (e) {
          window.parent.postMessage({ leadloop: "form-redirect", url: url }, "*");
        }
      } else {
        window.location.href = url;
      }
    }
  }

  if (embedded) {
    tellHeight();
    window.addEventListener("load", tellHeight);
    window.addEventListener("resize", tellHeight);
    if (window.ResizeObserver) new ResizeObserver(tellHeight).observe(document.body);
  }
})();
