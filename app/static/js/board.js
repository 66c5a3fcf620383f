// Working the board by hand and by keyboard: drag a card to another status column, or
// press one key on a focused card. Either way the card's own button does the work (the
// same request, answer, refusals and confirmation as a click); this file only decides
// which button, and keeps focus on the card. Dragging itself is SortableJS's.
(function () {
  "use strict";

  if (!window.htmx) return;

  // ---------------------------------------------------------------- the buttons -----

  function visible(el) {
    return el.offsetParent !== null;
  }

  // The actions this viewer can take on a card: its visible forms (CSS shows a card's
  // owner-only forms to its owner alone, and viewers none), each saying where it leads.
  function actionsOn(card) {
    window.Sprintboard.controls(card); // a big board's card may not have them yet (app.js)
    return Array.prototype.filter.call(card.querySelectorAll("form[data-leads-to]"), function (form) {
      return visible(form);
    });
  }

  // What a drag may do: the same, less reopening. A done card stays in Done however
  // it is dragged; undoing a Done is deliberate (its button, or its key).
  function dragActions(card) {
    return actionsOn(card).filter(function (form) { return form.getAttribute("data-action") !== "reopen"; });
  }

  function actionLeadingTo(card, status) {
    return actionsOn(card).find(function (form) { return form.getAttribute("data-leads-to") === status; });
  }

  // Press the form's button: htmx sends it (asking first for "give up"). Submitted as
  // its button would submit it, not clicked: a drag in which SortableJS saw no dragover
  // (a quick flick) leaves it set to swallow the next click on the page, and our click
  // would be that one (the browser's own click after the pointer is let go then takes
  // the swallowing). Our buttons carry no name or value, so htmx sends the same request
  // either way. Browsers without requestSubmit (Safari before 16) click.
  // Returns whether a request went out (false when the person said no to the question).
  function press(form) {
    var sent = false;
    function noteRequest(event) { if (event.detail.elt === form) sent = true; }
    document.body.addEventListener("htmx:beforeRequest", noteRequest);
    try {
      var button = form.querySelector("button");
      if (form.requestSubmit) form.requestSubmit(button); else button.click();
    } finally {
      document.body.removeEventListener("htmx:beforeRequest", noteRequest);
    }
    return sent;
  }

  // ---------------------------------------------------------------- dragging --------

  var dragging = null; // { card, from, allowed }

  function columns() {
    return document.querySelectorAll("[data-drop-status]");
  }

  function statusOf(list) {
    var column = list.closest("[data-drop-status]");
    return column ? column.getAttribute("data-drop-status") : null;
  }

  function startDrag(event) {
    var card = event.item;
    var allowed = {};
    dragActions(card).forEach(function (form) { allowed[form.getAttribute("data-leads-to")] = true; });
    dragging = { card: card, from: event.from, allowed: allowed };
    document.body.classList.add("dragging");
    columns().forEach(function (column) {
      var status = column.getAttribute("data-drop-status");
      var home = column.contains(event.from);
      column.setAttribute("data-drop-allowed", home || allowed[status] ? "true" : "false");
    });
    // Live changes wait until the drop (live.js): a card swapped out mid-drag would
    // break the drag.
    document.dispatchEvent(new CustomEvent("sprintboard:dragstart"));
  }

  // Where the pointer (or finger) was let go.
  function releasedOver(event) {
    var e = event.originalEvent;
    var point = e && e.changedTouches && e.changedTouches.length ? e.changedTouches[0] : e;
    if (!point || point.clientX === undefined) return null;
    var under = document.elementFromPoint(point.clientX, point.clientY);
    return under && under.closest("[data-drop-status]");
  }

  function endDrag(event) {
    var card = event.item;
    var over = releasedOver(event);
    var target = over && over.getAttribute("data-drop-status");
    // Where it is let go decides: over a column it may go to (not its own), it moves;
    // over one that refuses, or outside any, it goes home. SortableJS carries the card
    // into a column only on its next emulated dragover (every 50 ms), so a quick flick
    // may end before the card was shown there: it still counts, and is placed here.
    var moved = !!dragging && !!target && !over.contains(event.from) && !!dragging.allowed[target];
    dragging = null;
    document.body.classList.remove("dragging");
    columns().forEach(function (column) { column.removeAttribute("data-drop-allowed"); });
    if (moved && !over.contains(card)) over.querySelector(".cards").appendChild(card);
    if (!moved && event.to !== event.from) putBack(card, event.from, event.oldIndex);
    card.focus({ preventScroll: true });
    if (moved) {
      // The card is already in its new column (a moved card is shown where it is going);
      // the answer re-renders the columns as they really are, or puts it back with the
      // refusal's sentence.
      var form = actionLeadingTo(card, target);
      if (press(form)) sentFrom = { form: form, card: card, list: event.from, index: event.oldIndex };
      else putBack(card, event.from, event.oldIndex);
    }
    document.dispatchEvent(new CustomEvent("sprintboard:dragend"));
  }

  // A dropped card's request: if the answer is "signed out" (which re-renders nothing),
  // the card goes home by itself; any other answer puts the columns right.
  var sentFrom = null;

  document.body.addEventListener("sprintboard:signed-out", function () {
    if (sentFrom) putBack(sentFrom.card, sentFrom.list, sentFrom.index);
    sentFrom = null;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (sentFrom && event.detail.elt === sentFrom.form && event.detail.xhr.status !== 401) sentFrom = null;
  });

  function putBack(card, list, index) {
    var cards = list.querySelectorAll(":scope > .card");
    list.insertBefore(card, cards[index] || null);
    card.focus({ preventScroll: true });
  }

  function makeDroppable(list) {
    if (!window.Sortable || list._sortable) return;
    list._sortable = window.Sortable.create(list, {
      group: {
        name: "status",
        put: function (to) { return !!dragging && !!dragging.allowed[statusOf(to.el)]; },
      },
      sort: false, // a column's order is the board's order, not the drag's
      draggable: ".card",
      // Buttons, links and fields keep working as they do; and a card with nothing this
      // viewer may do to it does not move at all.
      filter: function (event, card) {
        return !!event.target.closest("a, button, input, textarea, select") || dragActions(card).length === 0;
      },
      preventOnFilter: false,
      // Its own pointer-driven dragging (mouse and touch alike) rather than the browser's,
      // so that the pointer can say where a card may go.
      forceFallback: true,
      fallbackOnBody: true,
      // On a touch screen a drag starts after a long press, so a swipe still scrolls.
      delay: 250,
      delayOnTouchOnly: true,
      touchStartThreshold: 5,
      emptyInsertThreshold: 24,
      ghostClass: "card-placeholder",
      chosenClass: "card-chosen",
      dragClass: "card-dragged",
      fallbackClass: "card-dragged",
      onStart: startDrag,
      onEnd: endDrag,
    });
  }

  // Columns come and go (a status view loads; an action's answer re-renders them).
  htmx.onLoad(function (root) {
    var lists = root.matches && root.matches("[data-drop-status]") ? [root] : root.querySelectorAll("[data-drop-status]");
    Array.prototype.forEach.call(lists, function (column) {
      var list = column.querySelector(".cards");
      if (list) makeDroppable(list);
    });
  });

  // ---------------------------------------------------------------- keys ------------

  var dialog = document.getElementById("shortcuts");

  function typing(target) {
    return !!target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])");
  }

  function cards() {
    return Array.prototype.filter.call(document.querySelectorAll("main .card[data-task-id]"), visible);
  }

  function move(step) {
    var all = cards();
    if (!all.length) return;
    var current = document.activeElement && document.activeElement.closest(".card[data-task-id]");
    var at = all.indexOf(current);
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    all[next].focus();
    all[next].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) || document.querySelector("dialog[open]") || dragging) return;
    var key = event.key;
    if (key === "?") {
      if (dialog) { event.preventDefault(); dialog.showModal(); }
      return;
    }
    if (key === "j" || key === "k") {
      event.preventDefault();
      move(key === "j" ? 1 : -1);
      return;
    }
    var card = document.activeElement && document.activeElement.closest(".card[data-task-id]");
    if (!card || key.length !== 1) return;
    var form = actionsOn(card).find(function (f) {
      return f.querySelector("button[aria-keyshortcuts]").getAttribute("aria-keyshortcuts") === key;
    });
    if (!form) return;
    event.preventDefault();
    card.focus({ preventScroll: true }); // where focus returns once the card is re-rendered
    press(form);
  });

  document.querySelectorAll("[data-open-shortcuts]").forEach(function (button) {
    button.hidden = false; // a button that does nothing without JavaScript is not shown then
    button.addEventListener("click", function () { if (dialog) dialog.showModal(); });
  });
})();
