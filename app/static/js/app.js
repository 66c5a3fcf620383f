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
    controls(card);
    var target = action ? visibleButton(card, action) || visibleButton(card) : null;
    (target || card).focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- card buttons ----

  // This browser runs our script: its pages may leave each card's buttons to it. (A
  // page for a browser that does not, or that has not said so yet, has them in every
  // card, and so does a page shown with scripting off: see board.no_script.)
  document.cookie = "sprintboard_js=1; path=/; max-age=31536000; samesite=lax";

  // A card that came without its buttons (data-controls="later") gets them from the
  // page's <template data-card-controls="<status>">, a stand-in's (id 0, title
  // "{title}") made this card's. On a board of a few cards that is at once; on a big
  // one, when a card comes near the screen, is pointed at or takes focus, or a key or
  // a drag asks for them (board.js): a sprint of thousands of cards is not thousands of
  // forms.
  var LAZY_AFTER = 150;
  var lazy = null; // decided by the page's first count of cards, for the page's life
  var nearScreen = null;

  function controls(card) {
    if (!card || card.getAttribute("data-controls") !== "later") return card;
    var model = document.querySelector('template[data-card-controls="' + card.getAttribute("data-status") + '"]');
    if (!model) return card;
    card.removeAttribute("data-controls");
    if (nearScreen) nearScreen.unobserve(card);
    var id = card.getAttribute("data-task-id");
    var title = card.querySelector(".card-title").textContent.trim();
    var actions = document.importNode(model.content, true);
    actions.querySelectorAll("*").forEach(function (el) {
      Array.prototype.forEach.call(el.attributes, function (attribute) {
        // (Replaced by functions: a title's "$&" is not a replacement pattern.)
        var value = attribute.value.replace("/tasks/0/", function () { return "/tasks/" + id + "/"; })
          .replace("#0", function () { return "#" + id; }).replace("{title}", function () { return title; });
        if (value !== attribute.value) el.setAttribute(attribute.name, value);
      });
    });
    card.appendChild(actions);
    if (window.htmx) htmx.process(card);
    // Named by its title for assistive technology once it can be acted on (the page
    // leaves the two attributes out of each of its thousands of cards).
    var heading = card.querySelector(".card-title");
    if (heading && !card.hasAttribute("aria-labelledby")) {
      heading.id = card.id + "-title";
      card.setAttribute("aria-labelledby", heading.id);
    }
    return card;
  }

  // Within a screen's height of being seen (what the observer below watches for).
  function nearTheScreen(card) {
    var box = card.getBoundingClientRect();
    return box.bottom > -window.innerHeight && box.top < 2 * window.innerHeight;
  }

  // Cards new on the page (it loaded, or a card or group was swapped in) get their
  // buttons now, or once they come within a screen's height of being seen.
  function adopt(root) {
    if (!root || !root.querySelectorAll) return;
    if (lazy === null) {
      lazy = "IntersectionObserver" in window
        && document.querySelectorAll('.card[data-controls="later"]').length > LAZY_AFTER;
      if (lazy) {
        nearScreen = new IntersectionObserver(function (entries) {
          entries.forEach(function (entry) { if (entry.isIntersecting) controls(entry.target); });
        }, { rootMargin: "100% 0px" });
      }
    }
    var one = root.matches && root.matches(".card");
    var cards = one ? [root] : root.querySelectorAll('.card[data-controls="later"]');
    Array.prototype.forEach.call(cards, function (card) {
      if (card.getAttribute("data-controls") !== "later") return;
      // A card placed where it can be seen (a change, my own answer) has its buttons at
      // once, not a frame later: they do not blink out under the pointer.
      if (!lazy || (one && nearTheScreen(card))) controls(card); else nearScreen.observe(card);
    });
  }

  function wanted(event) {
    var card = event.target.closest && event.target.closest(".card");
    if (card) controls(card);
  }
  document.addEventListener("focusin", wanted);
  document.addEventListener("pointerover", wanted);
  document.addEventListener("DOMContentLoaded", function () {
    adopt(document.body);
    if (window.htmx) htmx.onLoad(adopt);
  });

  window.Sprintboard = { focusCard: focusCard, controls: controls, adopt: adopt };

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
