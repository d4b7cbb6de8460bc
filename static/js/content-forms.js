/* The form editor's field builder, without a round trip: add from the catalogue, move up
   and down, remove. The same buttons work without script (the server re-renders the
   editor with the list changed and nothing saved). Plus the copy buttons. */
(function () {
  "use strict";
  var editor = document.querySelector("[data-ff-editor]");
  // Read-only (no add control): nothing to build.
  if (editor && editor.querySelector("[data-ff-add-select]")) {
    var rows = editor.querySelector("[data-ff-rows]");
    var select = editor.querySelector("[data-ff-add-select]");
    var empty = editor.querySelector("[data-ff-empty]");

    var refresh = function () {
      var used = {};
      rows.querySelectorAll("[data-ff-row]").forEach(function (row) { used[row.dataset.key] = true; });
      var firstFree = null;
      Array.prototype.forEach.call(select.options, function (option) {
        option.disabled = !!used[option.value];
        if (!option.disabled && firstFree === null) firstFree = option;
      });
      if (select.selectedOptions[0] && select.selectedOptions[0].disabled && firstFree) {
        firstFree.selected = true;
      }
      if (empty) empty.hidden = rows.children.length > 0;
    };

    editor.addEventListener("click", function (event) {
      var button = event.target.closest("[data-ff-op]");
      if (!button || button.closest("fieldset[disabled]")) return;
      var op = button.dataset.ffOp;
      if (op === "add") {
        event.preventDefault();
        var key = select.value;
        var template = editor.querySelector('template[data-ff-template="' + CSS.escape(key) + '"]');
        if (!template || rows.querySelector('[data-ff-row][data-key="' + CSS.escape(key) + '"]')) return;
        rows.appendChild(template.content.cloneNode(true));
        var added = rows.lastElementChild;
        refresh();
        if (added) added.querySelector("input[type=checkbox]").focus();
        return;
      }
      var row = button.closest("[data-ff-row]");
      if (!row) return;
      event.preventDefault();
      if (op === "up" && row.previousElementSibling) {
        rows.insertBefore(row, row.previousElementSibling);
      } else if (op === "down" && row.nextElementSibling) {
        rows.insertBefore(row.nextElementSibling, row);
      } else if (op === "remove") {
        row.remove();
        refresh();
        return;
      }
      button.focus();
    });
    refresh();
  }

  // Copy buttons: the clipboard API needs a secure context; elsewhere select the text.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var label = button.textContent;
    button.addEventListener("click", function () {
      var source = document.querySelector(button.dataset.copy);
      var done = function () {
        button.textContent = "✓";
        setTimeout(function () { button.textContent = label; }, 1500);
      };
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        try { if (document.execCommand("copy")) done(); } catch (e) { /* left selected */ }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent).then(done, select);
      } else {
        select();
      }
    });
  });
})();
