/* Segment editor: a tree of AND/OR groups and conditions kept in sync with the JSON in
   #segment-definition (the form posts that textarea; without script it is edited by hand),
   and a live preview (count, sample, planner cost, errors at their node) from
   POST /api/v1/segments/preview, debounced; a newer preview aborts the older one and the
   server cancels its query. */
(function () {
  "use strict";
  var optionsEl = document.getElementById("segment-options");
  var ta = document.getElementById("segment-definition");
  var tree = document.getElementById("segment-tree");
  if (!optionsEl || !ta || !tree) return;
  var opts = JSON.parse(optionsEl.textContent);
  var L = opts.labels;
  var exts = opts.extensions || {};
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var editor = "e" + Math.random().toString(36).slice(2, 12);
  var dateFields = opts.date_fields.map(function (f) { return f[0]; });
  var nodesByPath = {};
  var root;

  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), attrs[k]);
      else el.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) if (arguments[i]) el.appendChild(arguments[i]);
    return el;
  }

  function select(choices, value, onchange, label) {
    var s = h("select", { onchange: onchange, "aria-label": label || "" });
    choices.forEach(function (c) {
      var pair = Array.isArray(c) ? c : [c, c];
      var o = h("option", { value: String(pair[0]), text: String(pair[1]) });
      if (String(pair[0]) === String(value)) o.selected = true;
      s.appendChild(o);
    });
    return s;
  }

  function input(type, value, oninput, label) {
    var el = h("input", { type: type, "aria-label": label || "" });
    el.value = value === undefined || value === null ? "" : String(value);
    el.addEventListener("input", oninput);
    return el;
  }

  function isGroup(n) { return n && typeof n === "object" && ("all" in n || "any" in n); }

  function kindOf(n) {
    if (!n || typeof n !== "object") return "other";
    if ("field" in n) return dateFields.indexOf(n.field) >= 0 ? "date" : "field";
    var kinds = ["tag", "segment", "activity", "consent", "has_identity"].concat(Object.keys(exts));
    for (var i = 0; i < kinds.length; i++) if (kinds[i] in n && Object.keys(n).length === 1) return kinds[i];
    return "other";
  }

  function fresh(kind) {
    var first = function (list) { return list.length ? list[0][0] : 0; };
    switch (kind) {
      case "field": return { field: opts.fields[0][0], op: "eq", value: "" };
      case "date": return { field: dateFields[0], op: "within_days", value: 30 };
      case "tag": return { tag: first(opts.tags) };
      case "segment": return { segment: first(opts.segments) };
      case "activity": return { activity: { type: "content_view", days: 7, min_count: 1 } };
      case "consent": return { consent: { channel: "email", state: "withdrawn" } };
      case "has_identity": return { has_identity: opts.identities[0][0] };
      default:
        if (exts[kind]) { var node = {}; node[kind] = JSON.parse(JSON.stringify(exts[kind].fresh)); return node; }
        return { field: "industry", op: "not_empty" };
    }
  }

  function changed(rerender) {
    ta.value = JSON.stringify(root, null, 2);
    if (rerender) render();
    schedule();
  }

  function intOrNull(v) { var n = parseInt(v, 10); return isNaN(n) ? null : n; }

  // Conditions other apps add (lead stage, source quality…), drawn from their field list.
  function extensionBody(box, value, fields) {
    fields.forEach(function (f) {
      box.appendChild(h("span", { class: "muted", text: f.label }));
      if (f.type === "list" || f.type === "select") {
        var shown = f.type === "list" ? (value[f.key] || [""])[0] : value[f.key];
        var choices = f.type === "list" ? [["", L.any_value]].concat(f.choices) : f.choices;
        box.appendChild(select(choices, shown, function (e) {
          var v = e.target.value;
          if (f.type === "select") value[f.key] = v;
          else if (v) value[f.key] = [v]; else delete value[f.key];
          changed(false);
        }, f.label));
      } else if (f.type === "number") {
        box.appendChild(input("number", value[f.key], function (e) {
          var v = parseFloat(e.target.value); value[f.key] = isNaN(v) ? null : v; changed(false);
        }, f.label));
      } else if (f.type === "bool") {
        var box2 = h("input", { type: "checkbox", "aria-label": f.label });
        box2.checked = value[f.key] !== false;
        box2.addEventListener("change", function () { value[f.key] = box2.checked; changed(false); });
        box.appendChild(box2);
      }
    });
  }

  function conditionBody(n, set) {
    var kind = kindOf(n);
    var box = h("div", { class: "seg-cond" });
    var kinds = ["field", "date", "tag", "segment", "activity", "consent", "has_identity"].concat(Object.keys(exts), ["other"]);
    box.appendChild(select(kinds.map(function (k) { return [k, exts[k] ? exts[k].label : L[k]]; }), kind, function (e) {
      set(fresh(e.target.value)); changed(true);
    }, L.other));
    if (kind === "field" || kind === "date") {
      var fields = kind === "date" ? opts.date_fields : opts.fields;
      var ops = kind === "date" ? opts.date_ops : opts.field_ops;
      box.appendChild(select(fields, n.field, function (e) { n.field = e.target.value; changed(false); }, L.field));
      var opChoices = ops.map(function (o) { return [o, opts.op_labels[o] || o]; });
      box.appendChild(select(opChoices, n.op, function (e) {
        n.op = e.target.value;
        if (n.op === "empty" || n.op === "not_empty") delete n.value;
        else if (n.op === "in" || n.op === "not_in") n.value = [].concat(n.value || []).filter(Boolean);
        else if (kind === "date" && (n.op === "before" || n.op === "after")) n.value = new Date().toISOString().slice(0, 10);
        else if (kind === "date") n.value = 30;
        else if (Array.isArray(n.value)) n.value = n.value.join(",");
        changed(true);
      }));
      if (n.op !== "empty" && n.op !== "not_empty") {
        var type = kind === "date" ? (n.op === "before" || n.op === "after" ? "date" : "number") : "text";
        var shown = Array.isArray(n.value) ? n.value.join(",") : n.value;
        box.appendChild(input(type, shown, function (e) {
          var v = e.target.value;
          if (type === "number") n.value = intOrNull(v);
          else if (n.op === "in" || n.op === "not_in") n.value = v.split(/[,，]/).map(function (s) { return s.trim(); }).filter(Boolean);
          else n.value = v;
          changed(false);
        }));
      }
    } else if (kind === "tag" || kind === "segment") {
      var list = kind === "tag" ? opts.tags : opts.segments;
      box.appendChild(select(list, n[kind], function (e) { n[kind] = intOrNull(e.target.value); changed(false); }, L[kind]));
    } else if (exts[kind]) {
      extensionBody(box, n[kind], exts[kind].fields);
    } else if (kind === "has_identity") {
      box.appendChild(select(opts.identities, n.has_identity, function (e) { n.has_identity = e.target.value; changed(false); }));
    } else if (kind === "consent") {
      box.appendChild(select(opts.consent_channels, n.consent.channel, function (e) { n.consent.channel = e.target.value; changed(false); }));
      box.appendChild(select(opts.consent_states, n.consent.state, function (e) { n.consent.state = e.target.value; changed(false); }));
    } else if (kind === "activity") {
      var a = n.activity;
      box.appendChild(select(opts.activity_types.indexOf(a.type) >= 0 ? opts.activity_types : opts.activity_types.concat([a.type]), a.type,
        function (e) { a.type = e.target.value; changed(false); }, L.type));
      var num = function (key, label, optional) {
        box.appendChild(h("span", { class: "muted", text: label }));
        box.appendChild(input("number", a[key], function (e) {
          var v = intOrNull(e.target.value);
          if (v === null && optional) delete a[key]; else a[key] = v;
          changed(false);
        }, label));
      };
      num("days", L.days); num("min_count", L.min_count); num("max_count", L.max_count, true);
      box.appendChild(h("span", { class: "muted", text: L.topic }));
      box.appendChild(input("text", (a.properties || {}).topic, function (e) {
        var v = e.target.value.trim();
        if (v) a.properties = Object.assign({}, a.properties || {}, { topic: v });
        else if (a.properties) { delete a.properties.topic; if (!Object.keys(a.properties).length) delete a.properties; }
        changed(false);
      }, L.topic));
    } else {
      var raw = h("textarea", { rows: "2", "aria-label": L.other });
      raw.value = JSON.stringify(n);
      raw.addEventListener("input", function () {
        try { set(JSON.parse(raw.value)); raw.classList.remove("bad"); changed(false); } catch (err) { raw.classList.add("bad"); }
      });
      box.appendChild(raw);
    }
    return box;
  }

  function groupBody(g, path) {
    var key = "all" in g ? "all" : "any";
    var children = g[key];
    var box = h("div", { class: "seg-group " + key });
    var head = h("div", { class: "seg-head" });
    head.appendChild(select([["all", L.all], ["any", L.any]], key, function (e) {
      var arr = g[key]; delete g[key]; g[e.target.value] = arr; changed(true);
    }));
    head.appendChild(h("button", { type: "button", class: "btn small", text: L.add_condition, onclick: function () {
      children.push(fresh("field")); changed(true);
    } }));
    head.appendChild(h("button", { type: "button", class: "btn small", text: L.add_group, onclick: function () {
      children.push({ any: [fresh("field")] }); changed(true);
    } }));
    box.appendChild(head);
    children.forEach(function (child, i) {
      box.appendChild(slot(child, path + (path ? "." : "") + key + "[" + i + "]",
        function (v) { children[i] = v; },
        function () { children.splice(i, 1); changed(true); }));
    });
    return box;
  }

  function slot(value, path, set, remove) {
    var negated = value && typeof value === "object" && "not" in value && Object.keys(value).length === 1;
    var inner = negated ? value.not : value;
    var innerPath = negated ? path + ".not" : path;
    var wrap = h("div", { class: "seg-node" });
    var setInner = negated ? function (v) { value.not = v; } : set;
    wrap.appendChild(isGroup(inner) ? groupBody(inner, innerPath) : conditionBody(inner, setInner));
    if (remove) {
      var tools = h("div", { class: "seg-tools" });
      var not = h("input", { type: "checkbox" });
      not.checked = negated;
      not.addEventListener("change", function () { set(negated ? inner : { not: inner }); changed(true); });
      tools.appendChild(h("label", { class: "seg-not" }, not, document.createTextNode(L.not)));
      tools.appendChild(h("button", { type: "button", class: "btn small ghost", text: L.remove, onclick: remove }));
      wrap.appendChild(tools);
    }
    nodesByPath[innerPath] = wrap;
    if (negated) nodesByPath[path] = wrap;
    return wrap;
  }

  function render() {
    nodesByPath = {};
    tree.replaceChildren(slot(root, "", function (v) { root = v; }, null));
  }

  function load(text) {
    var parsed;
    try { parsed = JSON.parse(text || "null"); } catch (err) { return false; }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) parsed = { all: [] };
    root = isGroup(parsed) ? parsed : { all: [parsed] };
    return true;
  }

  // --- Preview ---------------------------------------------------------------------------
  var panel = document.getElementById("segment-preview");
  var out = function (name) { return panel.querySelector("[data-preview=" + name + "]"); };
  var timer = null, inflight = null;

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(preview, 400);
  }

  function markErrors(problems) {
    tree.querySelectorAll(".seg-err").forEach(function (el) { el.remove(); });
    tree.querySelectorAll(".seg-node.bad").forEach(function (el) { el.classList.remove("bad"); });
    problems.forEach(function (p) {
      var at = p.indexOf(": ");
      var path = at >= 0 ? p.slice(0, at) : "";
      if (path === "rule") path = "";
      while (path && !(path in nodesByPath)) path = path.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
      var node = nodesByPath[path] || nodesByPath[""];
      if (!node) return;
      node.classList.add("bad");
      node.appendChild(h("div", { class: "seg-err", text: p }));
    });
  }

  function preview() {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    out("count").textContent = "…";
    out("problems").textContent = "";
    fetch(opts.preview_url, {
      method: "POST",
      signal: inflight.signal,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify({ unit: opts.unit, definition: root, editor: editor })
    }).then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        var sample = out("sample");
        sample.replaceChildren();
        if (!res.ok) {
          var fields = ((res.body || {}).error || {}).fields || {};
          var problems = fields.definition || [((res.body || {}).error || {}).message || L.invalid];
          out("count").textContent = "—";
          out("cost").textContent = "";
          out("problems").textContent = L.invalid;
          markErrors(problems);
          return;
        }
        markErrors([]);
        var b = res.body;
        if (b.cancelled) return;
        if (b.timed_out) { out("count").textContent = "?"; out("problems").textContent = L.timed_out; }
        else out("count").textContent = String(b.count);
        out("cost").textContent = b.cost === null ? "" : L.cost + ": " + Math.round(b.cost);
        b.sample.forEach(function (c) {
          sample.appendChild(h("li", { text: (c.name || "#" + c.id) + (c.company ? " · " + c.company : "") }));
        });
      })
      .catch(function (err) { if (err.name !== "AbortError") out("count").textContent = "—"; });
  }

  ta.addEventListener("input", function () {
    if (load(ta.value)) { render(); schedule(); }
  });
  load(ta.value);
  ta.value = JSON.stringify(root, null, 2);
  render();
  // Problems the server found when the form was saved: shown at their nodes too.
  var saved = document.querySelectorAll("#definition-errors code");
  if (saved.length) markErrors(Array.prototype.map.call(saved, function (el) { return el.textContent; }));
  preview();
})();
