// The live board: places the cards that arrive over the stream, keeps the counts true,
// shows who did what, keeps the resume cursor, and says whether the board is live.
// The server renders each event once for everyone; everything that depends on who is
// looking (their grouping, their filters, "mine") is decided here.
(function () {
  "use strict";

  var board = document.getElementById("board");
  if (!board || !window.htmx) return;

  var me = document.body.getAttribute("data-user-id") || "";
  var transport = board.getAttribute("data-transport") || "sse";
  var connection = document.getElementById("connection");
  var TOAST_MS = 4000;
  var FOLD_MS = 4000;
  var MAX_TOASTS = 4;

  // ---------------------------------------------------------------- cursor ----------

  function cursor() {
    return parseInt(board.getAttribute("data-event-id"), 10) || 0;
  }

  function withCursor(url, id) {
    return url.replace(/([?&])after=\d*/, "$1after=" + id);
  }

  function advance(id) {
    if (!(id > cursor())) return;
    board.setAttribute("data-event-id", String(id));
    // htmx-ext-sse's own retry opens a new EventSource from this attribute and sends no
    // Last-Event-ID, so the attribute must always carry the newest id we have seen.
    var attr = transport === "ws" ? "ws-connect" : "sse-connect";
    board.setAttribute(attr, withCursor(board.getAttribute(attr), id));
  }

  if (transport === "ws") {
    // The WebSocket extension keeps the URL it started with; reconnect from where we are.
    htmx.createWebSocket = function (url) {
      return new WebSocket(withCursor(url, cursor()), []);
    };
  }

  // ---------------------------------------------------------------- placing cards ---

  function filters() {
    var statuses = board.getAttribute("data-filter-status");
    return {
      statuses: statuses ? statuses.split(",") : [],
      mine: board.getAttribute("data-filter-mine") === "1",
      available: board.getAttribute("data-filter-available") === "1",
    };
  }

  function matches(card) {
    var f = filters();
    var status = card.getAttribute("data-status");
    if (f.statuses.length && f.statuses.indexOf(status) < 0) return false;
    if (f.mine && (!me || card.getAttribute("data-owner-id") !== me)) return false;
    if (f.available && status !== "available") return false;
    return true;
  }

  function groupFor(card) {
    var byStatus = board.getAttribute("data-group-by") === "status";
    var key = byStatus ? "status-" + card.getAttribute("data-status")
                       : "story-" + card.getAttribute("data-story-id");
    return document.getElementById("group-" + key);
  }

  function insertSorted(container, card) {
    var key = card.getAttribute("data-sort");
    var cards = container.querySelectorAll(":scope > .card");
    for (var i = 0; i < cards.length; i++) {
      if (cards[i].getAttribute("data-sort") > key) {
        container.insertBefore(card, cards[i]);
        return;
      }
    }
    container.appendChild(card);
  }

  // Remember what had focus inside a card, so a swap does not throw keyboard users out.
  function focusInside(card) {
    var active = document.activeElement;
    if (!card || !active || !card.contains(active)) return null;
    var form = active.closest("form[data-action]");
    return { action: form ? form.getAttribute("data-action") : null };
  }

  function restoreFocus(card, remembered) {
    if (!remembered || !card.isConnected) return;
    var target = null;
    if (remembered.action) {
      var form = card.querySelector('form[data-action="' + remembered.action + '"]');
      target = form && form.querySelector("button");
      if (target && target.offsetParent === null) target = null;
    }
    (target || card).focus({ preventScroll: true });
  }

  var needsRefresh = false;

  function placeCard(card) {
    var old = document.getElementById(card.id);
    var remembered = focusInside(old);
    var group = groupFor(card);
    var container = group && group.querySelector(".cards");
    if (!matches(card) || !container) {
      if (old) old.remove();
      if (matches(card) && !container) needsRefresh = true; // a group this page lacks
      return;
    }
    if (old && old.parentNode === container && old.getAttribute("data-sort") === card.getAttribute("data-sort")) {
      old.replaceWith(card); // same place: nothing around it moves
    } else {
      if (old) old.remove();
      insertSorted(container, card);
    }
    htmx.process(card);
    restoreFocus(card, remembered);
  }

  function applyMessage(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    if (holder.content.querySelector("template[data-live-story]")) {
      // A story was added or renamed: its group (and every card's story name) changed.
      needsRefresh = true;
      return;
    }
    var live = holder.content.querySelector("template[data-live-card]");
    if (!live) return;
    var card = live.content.querySelector(".card");
    if (card) placeCard(document.importNode(card, true));
  }

  // ---------------------------------------------------------------- counts ----------

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function recount() {
    var groups = board.querySelectorAll("[data-group]");
    var shown = 0;
    groups.forEach(function (group) {
      var cards = group.querySelectorAll(".cards > .card");
      var n = cards.length;
      shown += n;
      group.setAttribute("data-count", String(n));
      var badge = group.querySelector(".group-head .count");
      if (badge) {
        setText(badge, String(n));
        badge.setAttribute("aria-label", n + " task" + (n === 1 ? "" : "s") + " shown");
      }
      var container = group.querySelector(".cards");
      var empty = container && container.querySelector(".group-empty");
      if (n === 0 && container && !empty) {
        var p = document.createElement("p");
        p.className = "group-empty";
        p.textContent = group.getAttribute("data-empty-text") || "";
        container.appendChild(p);
      } else if (n > 0 && empty) {
        empty.remove();
      }
    });
    var header = document.getElementById("sprint-header");
    var showing = document.getElementById("showing");
    if (showing) {
      showing.setAttribute("data-shown", String(shown));
      setText(showing.querySelector("[data-shown]"), String(shown));
      if (header) {
        showing.setAttribute("data-total", header.getAttribute("data-total"));
        setText(showing.querySelector("[data-total]"), header.getAttribute("data-total"));
      }
    }
    if (!header) return;
    // Filter counts are over the whole sprint; the header carries them for everyone.
    document.querySelectorAll('.chip[data-filter="status"]').forEach(function (chip) {
      var n = header.getAttribute("data-count-" + chip.getAttribute("data-value")) || "0";
      setChip(chip, n);
    });
    setChip(document.querySelector('.chip[data-filter="available"]'),
            header.getAttribute("data-count-available") || "0");
    var mine = "0";
    (header.getAttribute("data-owner-counts") || "").split(" ").forEach(function (pair) {
      var parts = pair.split(":");
      if (parts[0] === me) mine = parts[1];
    });
    setChip(document.querySelector('.chip[data-filter="mine"]'), mine);
  }

  function setChip(chip, n) {
    var count = chip && chip.querySelector(".chip-count");
    if (!count) return;
    count.setAttribute("data-count", n);
    setText(count, n);
  }

  // ---------------------------------------------------------------- toasts ----------

  var toasts = document.getElementById("toasts");

  function dismiss(toast) {
    clearTimeout(toast._timer);
    toast.remove();
  }

  function arm(toast) {
    clearTimeout(toast._timer);
    toast._timer = setTimeout(function () { dismiss(toast); }, TOAST_MS);
    toast._at = Date.now();
  }

  function adoptToasts() {
    if (!toasts) return;
    toasts.querySelectorAll(".toast:not([data-seen])").forEach(function (toast) {
      toast.setAttribute("data-seen", "");
      var actor = toast.getAttribute("data-actor-id");
      if (!actor || actor === me) { toast.remove(); return; } // my own actions: no toast
      // A burst from one person folds into their latest toast.
      var previous = toast.previousElementSibling;
      while (previous && !previous.hasAttribute("data-seen")) previous = previous.previousElementSibling;
      if (previous && previous.getAttribute("data-actor-id") === actor && Date.now() - previous._at < FOLD_MS) {
        var n = (parseInt(previous.getAttribute("data-folded"), 10) || 1) + 1;
        previous.setAttribute("data-folded", String(n));
        setText(previous.querySelector(".toast-text"),
                previous.getAttribute("data-actor") + " made " + n + " changes · latest: " +
                toast.querySelector(".toast-text").textContent.replace(/^\S+\s/, ""));
        toast.remove();
        arm(previous);
        return;
      }
      arm(toast);
    });
    var all = toasts.querySelectorAll(".toast");
    for (var i = 0; i < all.length - MAX_TOASTS; i++) dismiss(all[i]);
  }

  if (toasts) {
    toasts.addEventListener("click", function (event) {
      var button = event.target.closest(".toast-close");
      if (button) dismiss(button.closest(".toast"));
    });
  }

  // ---------------------------------------------------------------- connection ------

  var lastSync = null;

  function show(state, words) {
    if (!connection) return;
    connection.hidden = false;
    connection.setAttribute("data-state", state);
    setText(connection.querySelector(".connection-text"), words);
    var synced = connection.querySelector(".connection-synced");
    if (synced && lastSync) {
      setText(synced, "· synced " + lastSync.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
      synced.setAttribute("title", "Last in sync with the server at " + lastSync.toLocaleString());
    }
  }

  function synced() {
    lastSync = new Date();
    if (connection && connection.getAttribute("data-state") === "live") show("live", "Live");
  }

  function connected() { lastSync = new Date(); show("live", "Live"); }

  function lost() {
    if (navigator.onLine === false) show("offline", "Offline — changes will appear when you are back");
    else show("reconnecting", "Reconnecting…");
  }

  window.addEventListener("offline", lost);
  window.addEventListener("online", function () { show("reconnecting", "Reconnecting…"); });

  // ---------------------------------------------------------------- messages --------

  function reset() {
    // The stream cannot replay what we missed: load the board once, fresh.
    var last = parseInt(sessionStorage.getItem("sprintboard-reset") || "0", 10);
    if (Date.now() - last < 10000) return; // never loop
    sessionStorage.setItem("sprintboard-reset", String(Date.now()));
    window.location.reload();
  }

  function receive(id, type, html) {
    if (type === "reset") { reset(); return false; }
    if (id && id <= cursor()) return false; // already shown: drop the duplicate
    applyMessage(html);
    return true;
  }

  function settle(id) {
    if (id) advance(id);
    recount();
    adoptToasts();
    synced();
    if (needsRefresh) {
      needsRefresh = false;
      // A card belongs to a group this page has never seen (a new story): fetch the groups.
      htmx.ajax("GET", window.location.href, { target: "#board-groups", select: "#board-groups", swap: "outerHTML" })
        .then(recount);
    }
  }

  if (transport === "ws") {
    board.addEventListener("htmx:wsOpen", connected);
    board.addEventListener("htmx:wsClose", lost);
    board.addEventListener("htmx:wsError", lost);
    board.addEventListener("htmx:wsBeforeMessage", function (event) {
      var holder = document.createElement("template");
      holder.innerHTML = event.detail.message;
      var tagged = holder.content.querySelector("[data-event-id]");
      var id = tagged ? parseInt(tagged.getAttribute("data-event-id"), 10) : 0;
      var type = holder.content.querySelector("template[data-live-reset]") ? "reset" : "message";
      board._pendingId = id;
      if (!receive(id, type, event.detail.message)) event.preventDefault();
    });
    board.addEventListener("htmx:wsAfterMessage", function () { settle(board._pendingId); });
  } else {
    board.addEventListener("htmx:sseOpen", connected);
    board.addEventListener("htmx:sseError", lost);
    board.addEventListener("htmx:sseBeforeMessage", function (event) {
      var message = event.detail;
      var id = parseInt(message.lastEventId, 10) || 0;
      board._pendingId = id;
      if (!receive(id, message.type, message.data)) event.preventDefault();
    });
    board.addEventListener("htmx:sseMessage", function () { settle(board._pendingId); });
  }

  // The actor's own htmx answers swap groups out of band: keep the counts true then too.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form[data-action]")) recount();
  });
})();
