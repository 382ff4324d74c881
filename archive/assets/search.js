/* Search the static copy of the archive: the header's search box, answered on the copy's front
   page (the live site may be blocked). It reads search-index.json beside this script, and writes
   results with textContent only. Its words are the page's (translated by the app). */
(function () {
  "use strict";
  var section = document.getElementById("copy-search");
  var input = document.getElementById("site-search");
  if (!section || !input) return;
  var list = section.querySelector("ol");
  var unavailable = section.querySelector(".copy-search-unavailable");
  var form = input.form;
  // "ha noi" finds "Hà Nội": compare without case and without diacritics (đ has none to strip).
  function fold(s) {
    return (s || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[đĐ]/g, "d").toLowerCase();
  }
  var entries = null;
  function show() {
    var words = fold(input.value).split(/\s+/).filter(Boolean);
    list.textContent = "";
    if (!words.length || !entries) return;
    section.hidden = false;
    var shown = 0;
    for (var i = 0; i < entries.length && shown < 50; i++) {
      var e = entries[i];
      var hay = fold(e.t + " " + e.s + " " + e.x);
      if (!words.every(function (w) { return hay.indexOf(w) >= 0; })) continue;
      var li = document.createElement("li");
      var a = document.createElement("a");
      // A path from the copy's root; resolved against this page, so a language's front page
      // (vi/index.html) leads to that language's pages.
      a.href = e.u;
      a.textContent = e.t;
      li.appendChild(a);
      var p = document.createElement("p");
      p.textContent = e.x;
      li.appendChild(p);
      list.appendChild(li);
      shown++;
    }
    if (!shown) {
      var none = document.createElement("li");
      none.textContent = section.getAttribute("data-no-match");
      list.appendChild(none);
    }
  }
  function cannotRun() {
    // Say why rather than hide: a reader with the copy in a folder must know to open it elsewhere.
    section.hidden = false;
    unavailable.hidden = false;
  }
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) input.value = query;
  form.addEventListener("submit", function (ev) { ev.preventDefault(); show(); });
  input.addEventListener("input", show);
  var script = document.currentScript;
  var index = new URL("search-index.json", script ? script.src : window.location.href);
  if (window.location.protocol === "file:") { cannotRun(); return; }
  fetch(index).then(function (r) {
    if (!r.ok) throw new Error(r.status);
    return r.json();
  }).then(function (data) { entries = data.entries || []; show(); }).catch(cannotRun);
})();
