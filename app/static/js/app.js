// Sprintboard's own few lines of JavaScript. The pages work without any of it.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx) return;
    // Refusals (403 role, 404 gone, 409 conflict, 422 bad field) carry a sentence and
    // fresh copies of what changed: swap them in like a success instead of dropping them.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "(403|404|409|422)", swap: true, error: false },
      { code: "[45]..", swap: false, error: true },
    ];
  });

  // After an action re-rendered the card a button lived in, keep keyboard focus on
  // that card instead of letting it fall back to the top of the page.
  document.addEventListener("htmx:afterSettle", function (event) {
    var form = event.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-action]")) return;
    if (document.activeElement && document.activeElement !== document.body) return;
    var id = form.closest && form.closest("[data-task-id]");
    var taskId = id ? id.getAttribute("data-task-id") : form.getAttribute("hx-post").split("/")[4];
    var card = document.getElementById("task-" + taskId);
    if (!card) return;
    var button = Array.prototype.find.call(card.querySelectorAll("form[data-action] button"), function (b) {
      return b.offsetParent !== null;
    });
    (button || card).focus({ preventScroll: true });
  });
})();
