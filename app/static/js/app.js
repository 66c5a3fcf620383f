// Sprintboard's own few lines of JavaScript. The pages work without any of it.
(function () {
  "use strict";

  // Styles for what needs JavaScript (key hints, say) key on this class.
  document.documentElement.classList.add("js");

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx) return;
    // New content is wired up (its buttons made htmx buttons) as it is swapped in, not
    // 20 ms later: a key pressed at once on a re-rendered card must not post the plain form.
    htmx.config.defaultSettleDelay = 0;
    // Refusals (401 signed out, 403 role, 404 gone, 409 conflict, 422 bad field) and 503
    // (saving paused) carry a sentence and fresh copies of what changed: swap them in
    // like a success instead of dropping them.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "(401|403|404|409|422|503)", swap: true, error: false },
      { code: "[45]..", swap: false, error: true },
    ];
  });

  // Keyboard focus on a card that gets re-rendered (by my own action, or by a change
  // that arrives live) stays on that card. Focus that was on an action's button goes to
  // the same action's button when it is still offered, else to the card's first one;
  // focus anywhere else in the card goes to the card.
  function visibleButton(card, action) {
    var selector = action ? 'form[data-action="' + action + '"] button' : "form[data-action] button";
    return Array.prototype.find.call(card.querySelectorAll(selector), function (button) {
      return button.offsetParent !== null;
    });
  }

  function focusCard(card, action) {
    if (!card || !card.isConnected) return;
    var target = action ? visibleButton(card, action) || visibleButton(card) : null;
    (target || card).focus({ preventScroll: true });
  }

  window.Sprintboard = { focusCard: focusCard };

  // A field nearly full says how much room is left (and at its limit, that it is), so a
  // paste the browser cuts at the limit is no surprise. The server says the limit too.
  var notes = 0;

  function roomLeft(field) {
    var max = parseInt(field.getAttribute("maxlength"), 10);
    if (!max) return;
    var left = max - field.value.length;
    var note = field._roomLeft;
    if (left > Math.max(10, Math.round(max * 0.1))) {
      if (note) note.hidden = true;
      return;
    }
    if (!note) {
      note = field._roomLeft = document.createElement("span");
      note.className = "field-left";
      note.id = (field.id || "field-" + (++notes)) + "-left";
      note.setAttribute("aria-live", "polite");
      // After the field's label or its row with a button, not inside either.
      var after = field.closest("label, .inline-fields") || field;
      after.insertAdjacentElement("afterend", note);
      var described = field.getAttribute("aria-describedby");
      field.setAttribute("aria-describedby", (described ? described + " " : "") + note.id);
    }
    note.hidden = false;
    note.textContent = left <= 0 ? "At the limit: " + max + " characters"
      : left + " character" + (left === 1 ? "" : "s") + " left of " + max;
    note.toggleAttribute("data-full", left <= 0);
  }

  var LIMITED = "input[maxlength], textarea[maxlength]";
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches(LIMITED)) roomLeft(event.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(LIMITED).forEach(roomLeft);
  });

  // A <details> marked data-keep-open (the burndown's numbers) stays as its reader left
  // it when a change re-renders what holds it: a table being read must not snap shut.
  var keptOpen = {};
  document.addEventListener("toggle", function (event) {
    var key = event.target.getAttribute && event.target.getAttribute("data-keep-open");
    if (key) keptOpen[key] = event.target.open;
  }, true);
  function reopen() {
    document.querySelectorAll("details[data-keep-open]").forEach(function (details) {
      var open = !!keptOpen[details.getAttribute("data-keep-open")];
      if (details.open !== open) details.open = open;
    });
  }
  // (Keyboard focus on the numbers' <summary> survives the swap too: htmx puts focus
  // back on the element with the same id, which is why the summary has one.)
  document.addEventListener("htmx:oobAfterSwap", reopen);
  document.addEventListener("htmx:afterSwap", reopen);

  // After an action re-rendered the card a button lived in, keep keyboard focus on
  // that card instead of letting it fall back to the top of the page.
  document.addEventListener("htmx:afterSettle", function (event) {
    var form = event.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-action]")) return;
    if (document.activeElement && document.activeElement !== document.body) return;
    // The form may have left the page with its old card; that card still holds the id.
    var old = form.closest("[data-task-id]");
    if (old) {
      focusCard(document.getElementById("task-" + old.getAttribute("data-task-id")),
                form.getAttribute("data-action"));
    }
  });
})();
