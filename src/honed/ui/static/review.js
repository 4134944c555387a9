// Keyboard labelling on a review item's page. The page's buttons and links carry `data-key`; a key press
// clicks (or focuses) the control with that key, so without this file every control still works by hand.
// Loaded as a file of its own: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var ALIASES = { ArrowRight: "j", ArrowLeft: "k" };
  var busy = false; // a label is on its way: a second key press must not label the next item twice

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target instanceof HTMLElement && target.closest("textarea, input, select")) {
      if (event.key === "Escape") target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) target.form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || busy) return;
    var key = ALIASES[event.key] || event.key;
    var control = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!control) return;
    event.preventDefault();
    if (control.matches("textarea, input")) {
      control.focus();
      return;
    }
    busy = true;
    control.click();
  });
  // Coming back to a page from the browser's cache must take keys again.
  window.addEventListener("pageshow", function () {
    busy = false;
  });
})();
