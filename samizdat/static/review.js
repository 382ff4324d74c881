// Keyboard review on /manage/fragments: j/k move, a approve, r reject, e edit, Esc leaves a box.
// Everything here drives the page's own forms, which work the same without this file.
(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll("article.fragment"));
  if (!items.length) return;
  var current = 0;

  function select(index) {
    if (index < 0 || index >= items.length) return;
    items[current].classList.remove("current");
    current = index;
    items[current].classList.add("current");
    items[current].focus({ preventScroll: true });
    items[current].scrollIntoView({ block: "nearest" });
  }

  function submit(kind) {
    var form = items[current].querySelector("form." + kind);
    if (form) form.requestSubmit ? form.requestSubmit() : form.submit();
  }

  function edit() {
    var details = items[current].querySelector("details.edit");
    if (!details) return;
    details.open = true;
    var box = details.querySelector("textarea");
    if (box) box.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
    if (typing) {
      if (event.key === "Escape") { target.blur(); items[current].focus({ preventScroll: true }); }
      return; // letters typed into a box are text, not commands
    }
    var handled = true;
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "a": submit("approve"); break;
      case "r": submit("reject"); break;
      case "e": edit(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  items.forEach(function (item, index) {
    item.addEventListener("focusin", function () {
      items[current].classList.remove("current");
      current = index;
      item.classList.add("current");
    });
  });
  select(0);
})();
