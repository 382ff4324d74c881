/* Snippet builder: "Copy" buttons copy the code of the textarea they name. Nothing else. */
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    var area = document.getElementById(button.getAttribute("data-copy"));
    var done = function () { button.textContent = button.getAttribute("data-done") || "Copied"; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(area.value).then(done, function () { area.select(); });
    } else { area.select(); document.execCommand("copy"); done(); }
  });
});
