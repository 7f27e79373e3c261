// lookout review: keyboard shortcuts. Served as a file (the CSP allows no inline script); it only moves
// focus, checks radio buttons and submits the page's own forms. It never reads or writes record text.
"use strict";

(function () {
  function radios(name) {
    return Array.prototype.slice.call(document.querySelectorAll('input[type="radio"]')).filter(function (r) {
      return r.name === name;
    });
  }

  function cycle(name, step) {
    var group = radios(name);
    if (!group.length) return;
    var i = group.findIndex(function (r) { return r.checked; });
    var next = (i + step + group.length) % group.length;
    group[next].checked = true;
    group[next].dispatchEvent(new Event("change", { bubbles: true }));
  }

  function clamp(name, step) {
    var group = radios(name);
    var i = group.findIndex(function (r) { return r.checked; });
    var next = Math.max(0, Math.min(group.length - 1, i + step));
    if (group[next]) group[next].checked = true;
  }

  // a / x judge the routing reasons only: the detectors that sent the item here, never every flagged one
  function setReasons(value) {
    document.querySelectorAll("tr[data-required][data-detector]").forEach(function (row) {
      radios("verdict." + row.dataset.detector).forEach(function (r) { r.checked = r.value === value; });
    });
    showError("");
  }

  function verdictOf(row) {
    var checked = radios("verdict." + row.dataset.detector).filter(function (r) { return r.checked; })[0];
    return checked ? checked.value : "";
  }

  function rowsWhere(selector, test) {
    return Array.prototype.slice.call(document.querySelectorAll(selector)).filter(test).map(function (row) {
      return row.dataset.detector;
    });
  }

  // the server checks the same rules (and answers 422); checking here keeps what was typed
  function labelProblem() {
    var missing = rowsWhere("tr[data-required][data-detector]", function (row) { return verdictOf(row) === ""; });
    if (missing.length) return "Give a verdict for the routing reasons: " + missing.join(", ") + " (a confirms, x rejects).";
    var harms = rowsWhere("tr[data-harm][data-detector]", function (row) { return verdictOf(row) === "confirm"; });
    var severity = radios("severity").filter(function (r) { return r.checked; })[0];
    if (harms.length && (!severity || severity.value === "0")) {
      return harms.join(" and ") + " confirmed as harm: choose a severity (] raises it), not none.";
    }
    return "";
  }

  function showError(message) {
    var box = document.getElementById("form-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function overviewKey(e) {
    if (/^[1-9]$/.test(e.key)) {
      var form = document.querySelector('form[data-queue-index="' + e.key + '"]');
      var button = form && form.querySelector("button");
      if (button && !button.disabled) { e.preventDefault(); submit(form); }
    }
  }

  function itemKey(e) {
    var labelForm = document.getElementById("label-form");
    if (/^[1-9]$/.test(e.key)) {
      var row = document.querySelector('tr[data-index="' + e.key + '"]');
      if (row) {
        e.preventDefault();
        var fold = row.closest("details");
        if (fold) fold.open = true;
        cycle("verdict." + row.dataset.detector, 1);
      }
      return;
    }
    switch (e.key) {
      case "a": e.preventDefault(); setReasons("confirm"); break;
      case "x": e.preventDefault(); setReasons("reject"); break;
      case "]": e.preventDefault(); clamp("severity", 1); break;
      case "[": e.preventDefault(); clamp("severity", -1); break;
      case "p": e.preventDefault(); cycle("preference", 1); break;
      case "n": e.preventDefault(); document.getElementById("note").focus(); break;
      case "c": e.preventDefault(); document.getElementById("corrected").focus(); break;
      case "s": e.preventDefault(); submit(document.getElementById("skip-form")); break;
      case "Enter": e.preventDefault(); submit(labelForm); break;
      default: break;
    }
  }

  document.addEventListener("submit", function (e) {
    if (e.target.id !== "label-form") return;
    var problem = labelProblem();
    showError(problem);
    if (problem) e.preventDefault();
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey && e.key !== "Enter") return;
    if (e.metaKey || e.altKey) return;
    var target = e.target;
    var typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "radio" && target.type !== "checkbox"));
    var page = document.body.dataset.page;
    if (typing) {
      if (e.key === "Escape") target.blur();
      if (page === "item" && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit(document.getElementById("label-form"));
      }
      return;
    }
    if (e.ctrlKey) return;
    if (e.key === "g" && page !== "login") {
      var home = document.querySelector('a[data-key="g"]');
      if (home) { e.preventDefault(); window.location.assign(home.getAttribute("href")); }
      return;
    }
    if (page === "overview") overviewKey(e);
    else if (page === "item") itemKey(e);
  });
})();
