/* Search the static copy of the archive: optional, the pages work without it. It reads
   search-index.json beside the front page, and writes results with textContent only. */
(function () {
  "use strict";
  var main = document.getElementById("main") || document.querySelector("main") || document.body;
  // "ha noi" finds "Hà Nội": compare without case and without diacritics (đ has none to strip).
  function fold(s) {
    return (s || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[đĐ]/g, "d").toLowerCase();
  }
  var form = document.createElement("form");
  form.setAttribute("role", "search");
  form.className = "static-search";
  var label = document.createElement("label");
  label.textContent = "Search this copy ";
  var input = document.createElement("input");
  input.type = "search";
  input.name = "q";
  label.appendChild(input);
  form.appendChild(label);
  var list = document.createElement("ol");
  list.setAttribute("aria-live", "polite");
  form.appendChild(list);
  main.insertBefore(form, main.firstChild);
  var entries = null;
  function show() {
    var words = fold(input.value).split(/\s+/).filter(Boolean);
    list.textContent = "";
    if (!words.length || !entries) return;
    var shown = 0;
    for (var i = 0; i < entries.length && shown < 50; i++) {
      var e = entries[i];
      var hay = fold(e.t + " " + e.s + " " + e.x);
      if (!words.every(function (w) { return hay.indexOf(w) >= 0; })) continue;
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = e.u;  // a relative path inside this copy, written by the exporter
      a.textContent = e.t;
      li.appendChild(a);
      var p = document.createElement("p");
      p.textContent = e.x;
      li.appendChild(p);
      list.appendChild(li);
      shown++;
    }
    if (!shown) { var none = document.createElement("li"); none.textContent = "No match."; list.appendChild(none); }
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); show(); });
  input.addEventListener("input", show);
  fetch("search-index.json").then(function (r) { return r.json(); })
    .then(function (data) { entries = data.entries || []; show(); })
    .catch(function () { form.hidden = true; });
})();
