// The live board: what must be decided per viewer when a change arrives. The server
// renders each event once for everyone; this places the card for this viewer's grouping
// and filters, keeps the counts true, folds toasts, keeps the resume cursor, and says
// whether the board is live. htmx and its SSE / WebSocket extensions do the rest.
(function () {
  "use strict";

  // The element holding the stream: the board, a task's page, an edit page, or the backlog.
  var board = document.getElementById("board") || document.getElementById("task-live")
    || document.getElementById("edit-live") || document.getElementById("backlog-live")
    || document.getElementById("mine-live");
  if (!board || !window.htmx) return;

  var me = document.body.getAttribute("data-user-id") || "";
  // A task's page follows the same stream, for its one card and its history.
  var taskPage = board.getAttribute("data-page") === "task" ? board.getAttribute("data-task-id") : null;
  // An edit page only says what others changed (and who else is editing): it never
  // touches the form, whose inputs hold what the person is typing.
  var editPage = board.getAttribute("data-page") === "edit";
  // The backlog follows the whole organization: stories moving in or out, tasks added.
  var backlogPage = board.getAttribute("data-page") === "backlog";
  // My work follows the whole organization too, for what I hold or held.
  var minePage = board.getAttribute("data-page") === "mine";
  var transport = board.getAttribute("data-transport") || "sse";
  var connection = document.getElementById("connection");
  var TOAST_MS = 4000;
  var FOLD_MS = 4000;
  var MAX_TOASTS = 4;

  // ---------------------------------------------------------------- cursor ----------

  // The newest event this page shows. Every (re)connection resumes after it: the
  // extensions open a new EventSource or WebSocket on each retry (sending no
  // Last-Event-ID), so the URL they ask for gets the cursor as `after=`.
  function cursor() {
    return parseInt(board.getAttribute("data-event-id"), 10) || 0;
  }

  function withCursor(url) {
    return url.replace(/([?&])after=\d*/, "$1after=" + cursor());
  }

  function advance(id) {
    if (id > cursor()) board.setAttribute("data-event-id", String(id));
  }

  var signedOut = false;

  var stream = null; // the EventSource or WebSocket open now

  htmx.createEventSource = function (url) {
    stream = new EventSource(withCursor(url), { withCredentials: true });
    return stream;
  };
  htmx.createWebSocket = function (url) {
    // Once signed out, hand the extension a socket that is already closed and never
    // says so: its retries stop here.
    if (signedOut) return { readyState: 3, addEventListener: function () {}, close: function () {} };
    stream = new WebSocket(withCursor(url), []);
    return stream;
  };
  // Leaving the page: close the stream ourselves. Cut by the unload instead, it would
  // report an error on its way out (and the extension would log it).
  window.addEventListener("pagehide", function () { if (stream) stream.close(); });

  // ---------------------------------------------------------------- placing cards ---

  function filters() {
    var statuses = board.getAttribute("data-filter-status");
    return {
      statuses: statuses ? statuses.split(",") : [],
      mine: board.getAttribute("data-filter-mine") === "1",
      available: board.getAttribute("data-filter-available") === "1",
    };
  }

  // The same rule as BoardQuery.matches on the server (filters narrow: all must hold).
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

  // Where keyboard focus was inside a card, so a swap does not throw keyboard users out.
  function focusInside(card) {
    var active = document.activeElement;
    if (!card || !active || !card.contains(active)) return null;
    var form = active.closest("form[data-action]");
    return { action: form ? form.getAttribute("data-action") : null };
  }

  var needsRefresh = false;

  // The newest version of each card this page has been given: an older copy arriving
  // later (my own answer after the stream brought a later change, say) never wins, even
  // when the newer one has left the page since.
  var versions = {};

  function placeCard(card) {
    var old = document.getElementById(card.id);
    var version = parseInt(card.getAttribute("data-version"), 10) || 0;
    var shown = old ? parseInt(old.getAttribute("data-version"), 10) || 0 : 0;
    if (Math.max(shown, versions[card.id] || 0) > version) return;
    versions[card.id] = version;
    if (card.getAttribute("data-archived") === "true") { // off every board
      if (old) old.remove();
      return;
    }
    var focused = focusInside(old);
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
    window.Sprintboard.adopt(card);
    if (focused) window.Sprintboard.focusCard(card, focused.action);
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

  // A change's counts, when the header itself did not come (nothing else in it moved):
  // onto the header, where recount() reads them for the chips.
  function applyCounts(message) {
    var counts = message.querySelector("template[data-live-counts]");
    var header = document.getElementById("sprint-header");
    if (!counts || !header || counts.getAttribute("data-sprint-id") !== board.getAttribute("data-sprint-id")) return;
    Array.prototype.forEach.call(counts.attributes, function (attribute) {
      if (attribute.name.indexOf("data-count-") === 0 || attribute.name === "data-owner-counts") {
        header.setAttribute(attribute.name, attribute.value);
      }
    });
  }

  function setChip(chip, n) {
    var count = chip && chip.querySelector(".chip-count");
    if (!count) return;
    count.setAttribute("data-count", n);
    setText(count, n);
  }

  // ---------------------------------------------------------------- toasts ----------

  // My own actions' toasts arrive too (the message is the same for everyone); a CSS
  // rule keyed on my user id hides them, and they go by like any other.
  var toasts = document.getElementById("toasts");

  function dismiss(toast) {
    clearTimeout(toast._timer);
    toast.remove();
  }

  function arm(toast) {
    clearTimeout(toast._timer);
    // Told that a task of mine was freed (and why): that stays until I close it.
    if (me && toast.getAttribute("data-freed-from") === me) { toast.setAttribute("data-sticky", ""); return; }
    toast._timer = setTimeout(function () { dismiss(toast); }, TOAST_MS);
    toast._at = Date.now();
  }

  function adoptToasts() {
    if (!toasts) return;
    toasts.querySelectorAll(".toast:not([data-seen])").forEach(function (toast) {
      toast.setAttribute("data-seen", "");
      var actor = toast.getAttribute("data-actor-id");
      // A burst from one person folds into their latest toast.
      var previous = toast.previousElementSibling;
      while (previous && !previous.hasAttribute("data-seen")) previous = previous.previousElementSibling;
      if (actor && previous && previous.getAttribute("data-actor-id") === actor && Date.now() - previous._at < FOLD_MS
          && !previous.hasAttribute("data-sticky") && toast.getAttribute("data-freed-from") !== me) {
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
    // (A toast that stays until closed is not one of the few that go by.)
    var others = Array.prototype.filter.call(toasts.querySelectorAll(".toast:not([data-sticky])"), function (toast) {
      return toast.getAttribute("data-actor-id") !== me;
    });
    for (var i = 0; i < others.length - MAX_TOASTS; i++) dismiss(others[i]);
  }

  if (toasts) {
    toasts.addEventListener("click", function (event) {
      var button = event.target.closest(".toast-close");
      if (button) dismiss(button.closest(".toast"));
    });
  }

  // ---------------------------------------------------------------- presence --------

  // Who else is looking: the stream sends one list for the whole sprint, me included.
  // My own entry is dropped here, and the people on a task's page are painted onto its
  // card (cards arrive without them: a broadcast card is the same for everyone).
  function applyPresence(message) {
    var holder = message.querySelector("template[data-live-presence]");
    var row = holder && holder.content.querySelector("#presence");
    var old = document.getElementById("presence");
    if (!row || !old || holder.getAttribute("data-sprint-id") !== board.getAttribute("data-sprint-id")) return;
    row = document.importNode(row, true);
    // The notice counts everyone, me included; it names at most a few dozen. If I am not
    // named, I am among those only counted.
    var total = parseInt(row.getAttribute("data-count"), 10) || 0;
    var mine = row.querySelectorAll('.presence-person[data-presence-user-id="' + me + '"]');
    var named = row.querySelectorAll(".presence-person").length;
    if (mine.length || total > named) total -= 1;
    mine.forEach(function (el) { el.remove(); });
    var people = row.querySelectorAll(".presence-person");
    var handful = parseInt(row.getAttribute("data-handful"), 10) || 5;
    people.forEach(function (person, i) { person.classList.toggle("presence-extra", i >= handful); });
    row.setAttribute("data-count", String(total));
    row.setAttribute("data-listed", String(people.length));
    setText(row.querySelector(".presence-more-count"), String(Math.max(0, total - handful)));
    row.querySelector(".presence-more").hidden = total <= handful;
    setText(row.querySelector(".presence-unlisted-count"), String(total - people.length));
    row.querySelector(".presence-unlisted").hidden = total <= people.length;
    row.querySelector(".presence-alone").hidden = total > 0;
    // Keep an opened list open, and keyboard focus where it was.
    if (old.hasAttribute("data-open")) {
      row.setAttribute("data-open", "");
      row.querySelector(".presence-more").setAttribute("aria-expanded", "true");
    }
    var focused = old.contains(document.activeElement) ? document.activeElement : null;
    old.replaceWith(row);
    if (focused) {
      var again = focused.classList.contains("presence-more") ? row.querySelector(".presence-more")
        : focused.getAttribute("href") && row.querySelector('a[href="' + focused.getAttribute("href") + '"]');
      var target = again && !again.hidden ? again : row.querySelector(".presence-more:not([hidden])");
      if (target) target.focus(); // else the person it was on left: focus stays on the page
    }
    paintViewers();
  }

  function paintViewers() {
    var byTask = {};
    document.querySelectorAll("#presence [data-viewing-task]").forEach(function (person) {
      var task = person.getAttribute("data-viewing-task");
      (byTask[task] = byTask[task] || []).push(person);
    });
    // The cards that show people now, and those that should: a card holds a
    // .card-viewers only while someone is on its page (a board of thousands has few).
    var cards = [];
    document.querySelectorAll(".card > .card-viewers").forEach(function (holder) { cards.push(holder.parentNode); });
    Object.keys(byTask).forEach(function (task) {
      var card = document.getElementById("task-" + task);
      if (card && cards.indexOf(card) < 0) cards.push(card);
    });
    cards.forEach(function (card) {
      var people = byTask[card.getAttribute("data-task-id")] || [];
      var holder = card.querySelector(":scope > .card-viewers");
      if (!people.length) {
        if (holder) holder.remove();
        return;
      }
      if (!holder) {
        holder = document.createElement("span");
        holder.className = "card-viewers";
        card.insertBefore(holder, card.querySelector(":scope > .status-badge"));
      }
      var key = people.map(function (p) {
        return p.getAttribute("data-presence-user-id") + (p.getAttribute("data-editing") ? "e" : "");
      }).join(",");
      if (holder.getAttribute("data-shown") === key) return;
      holder.setAttribute("data-shown", key);
      holder.textContent = "";
      people.forEach(function (person) {
        var name = person.querySelector(".presence-name").textContent;
        var editing = person.getAttribute("data-editing") === "true";
        var chip = document.createElement("span");
        chip.className = "avatar avatar-xs";
        chip.setAttribute("style", person.querySelector(".avatar").getAttribute("style") || "");
        chip.setAttribute("data-presence-user-id", person.getAttribute("data-presence-user-id"));
        if (editing) chip.setAttribute("data-editing", "true");
        chip.title = name + (editing ? " is editing this task" : " is on this task's page");
        var letter = document.createElement("span");
        letter.setAttribute("aria-hidden", "true");
        letter.textContent = name.charAt(0);
        var words = document.createElement("span");
        words.className = "sr-only";
        words.textContent = chip.title;
        chip.appendChild(letter);
        chip.appendChild(words);
        holder.appendChild(chip);
      });
    });
  }

  document.addEventListener("click", function (event) {
    var more = event.target.closest && event.target.closest(".presence-more");
    if (!more) return;
    var row = more.closest("#presence");
    var open = !row.hasAttribute("data-open");
    row.toggleAttribute("data-open", open);
    more.setAttribute("aria-expanded", String(open));
  });

  // ---------------------------------------------------------------- connection ------

  var lastSync = null;

  function show(state, words) {
    if (!connection) return;
    connection.hidden = false;
    connection.setAttribute("data-state", state);
    setText(connection.querySelector(".connection-text"), words);
    var signIn = connection.querySelector(".connection-signin");
    if (signIn) signIn.hidden = state !== "signed-out";
    var synced = connection.querySelector(".connection-synced");
    if (synced) synced.hidden = state === "signed-out";
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
    if (signedOut) return;
    if (navigator.onLine === false) show("offline", "Offline — changes will appear when you are back");
    else show("reconnecting", "Reconnecting…");
  }

  // A refused reconnection may mean the session is over (signed out everywhere, or the
  // server restarted with a new key). Ask once: then say so, and stop retrying.
  var checking = false;

  function checkSession() {
    if (checking || signedOut) return;
    checking = true;
    fetch("/api/v1/users/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { if (response.status === 401) endSession(); })
      .catch(function () { /* the network is away: keep reconnecting */ })
      .then(function () { checking = false; });
  }

  function endSession() {
    signedOut = true;
    if (stream) stream.close(); // no more changes under "Signed out"
    board.removeAttribute("sse-connect"); // the SSE extension retries from this attribute
    show("signed-out", "Signed out");
  }

  // An action of mine was answered "signed out": the stream is over too.
  document.body.addEventListener("sprintboard:signed-out", endSession);

  window.addEventListener("offline", lost);
  window.addEventListener("online", function () { if (!signedOut) show("reconnecting", "Reconnecting…"); });

  // ---------------------------------------------------------------- messages --------

  function reset() {
    // The stream cannot replay what we missed: load the board once, fresh.
    var last = parseInt(sessionStorage.getItem("sprintboard-reset") || "0", 10);
    if (Date.now() - last < 10000) return; // never loop
    sessionStorage.setItem("sprintboard-reset", String(Date.now()));
    window.location.reload();
  }

  function parse(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    return holder.content;
  }

  // On a task's page: its card is replaced where it stands, and its history (newest
  // first, as a reload would show it) is fetched again, only by the people on this page.
  function followTask(message) {
    var live = message.querySelector("template[data-live-card]");
    var card = live && live.content.querySelector(".card");
    if (!card || card.getAttribute("data-task-id") !== taskPage) return;
    var old = document.getElementById(card.id);
    if (!old) return;
    var focused = focusInside(old);
    var fresh = document.importNode(card, true);
    old.replaceWith(fresh);
    window.Sprintboard.adopt(fresh);
    if (focused) window.Sprintboard.focusCard(fresh, focused.action);
    // A rename: the page's heading and its tab say the new title too.
    var heading = document.querySelector("main h1");
    var title = fresh.querySelector(".card-title");
    if (heading && title) {
      var named = "#" + taskPage + " " + title.textContent.trim();
      setText(heading, named);
      document.title = named + " · Sprintboard";
    }
    htmx.ajax("GET", window.location.pathname, { target: "#task-history", select: "#task-history", swap: "outerHTML" });
  }

  // ---------------------------------------------------------------- edit pages ------

  var editTask = board.getAttribute("data-task-id");
  var editStory = board.getAttribute("data-story-id");
  var changes = [];

  // Someone else changed what this page edits: say who and what, above the form.
  function noteChange(message) {
    var about = editTask
      ? message.querySelector('template[data-live-card][data-task-id="' + editTask + '"]')
      : message.querySelector('template[data-live-story][data-story-id="' + editStory + '"]');
    if (!about || about.getAttribute("data-actor-id") === me) return;
    changes.push(about.getAttribute("data-change"));
    var notice = document.querySelector("[data-edit-notice]");
    if (!notice) return;
    notice.textContent = changes.slice(-3).join(". ") + ". What you typed is kept; saving "
      + "applies your changes and shows any field you both changed.";
    notice.hidden = false;
  }

  // Who else has this same edit page open, from the sprint's presence notice.
  function editingToo(message) {
    var holder = message.querySelector("template[data-live-presence]");
    var line = document.querySelector("[data-editing-too]");
    if (!holder || !line || holder.getAttribute("data-sprint-id") !== board.getAttribute("data-sprint-id")) return;
    var here = editTask ? '[data-viewing-task="' + editTask + '"]' : '[data-viewing-story="' + editStory + '"]';
    var names = [];
    holder.content.querySelectorAll('.presence-person[data-editing="true"]' + here).forEach(function (person) {
      if (person.getAttribute("data-presence-user-id") === me) return;
      names.push(person.querySelector(".presence-name").textContent);
    });
    var who = names.length > 1 ? names.slice(0, -1).join(", ") + " and " + names[names.length - 1] : names.join("");
    line.textContent = names.length ? who + (names.length > 1 ? " are" : " is") + " editing this "
      + line.getAttribute("data-what") + " too" : "";
    line.hidden = !names.length;
  }

  // ---------------------------------------------------------------- reshaping -------

  // Stories came or went, or the sprint changed (a completed sprint turns read-only):
  // fetch this same page and take its header, notice and groups, as a reload would.
  var refreshing = null;

  function refreshBoard() {
    if (refreshing) { refreshing.again = true; return; }
    refreshing = { again: false };
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) {
        // The sprint was deleted: its stories went to the backlog, and so does the page.
        if (response.status === 404) window.location.assign("/o/" + board.getAttribute("data-org") + "/backlog");
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var page = fresh.getElementById("board");
        if (!page) return;
        ["sprint-header", "board-closed", "board-filters", "board-groups"].forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) {
            next = document.importNode(next, true);
            now.replaceWith(next);
            htmx.process(next);
            window.Sprintboard.adopt(next);
          }
        });
        ["data-sprint-status", "data-closed"].forEach(function (name) {
          if (page.hasAttribute(name)) board.setAttribute(name, page.getAttribute(name));
          else board.removeAttribute(name);
        });
        recount();
        paintViewers();
      })
      .catch(function () { /* the next event, or a reload, brings it */ })
      .then(function () {
        var again = refreshing && refreshing.again;
        refreshing = null;
        if (again) refreshBoard();
      });
  }

  // A change of where this task's page stands: it or its story moved, was archived or
  // restored, or its sprint changed.
  function concernsTaskPage(live) {
    if (!live) return false;
    var type = live.getAttribute("data-event-type");
    if (type.indexOf("sprint_") === 0) return true;
    var ids = (live.getAttribute("data-task-ids") || "").split(" ");
    if (ids.indexOf(taskPage) >= 0) return true;
    return type.indexOf("story_") === 0 && live.getAttribute("data-story-id") === board.getAttribute("data-story-id");
  }

  // On My work: its lists, fetched again when a change is about my tasks (held or
  // done), or moves work about.
  function touchesMine(message) {
    if (message.querySelector("template[data-live-board]")) return true;
    var live = message.querySelector("template[data-live-card]");
    var card = live && live.content.querySelector(".card");
    if (!card) return false;
    return card.getAttribute("data-owner-id") === me || live.getAttribute("data-previous-owner-id") === me
      || !!document.querySelector('#mine-lists [data-task-id="' + card.getAttribute("data-task-id") + '"]');
  }

  function refreshMine() {
    htmx.ajax("GET", window.location.pathname, { target: "#mine-lists", select: "#mine-lists", swap: "outerHTML" })
      .then(function () { paintViewers(); });
  }

  // On the backlog: its list, fetched again.
  function refreshBacklog() {
    htmx.ajax("GET", window.location.pathname, { target: "#backlog-stories", select: "#backlog-stories", swap: "outerHTML" });
  }

  function touchesBacklog(message) {
    if (message.querySelector("template[data-live-board], template[data-live-story]")) return true;
    var live = message.querySelector("template[data-live-card]");
    var card = live && live.content.querySelector(".card");
    return !!(card && (document.querySelector('#backlog-stories [data-task-id="' + card.getAttribute("data-task-id") + '"]')
      || document.getElementById("backlog-story-" + card.getAttribute("data-story-id"))));
  }

  // Out-of-band parts this page has no place for (a sprint's header on a task's page,
  // say) are left out rather than reported as errors.
  function withoutStrangers(message) {
    message.querySelectorAll("[hx-swap-oob]").forEach(function (part) {
      var target = (part.getAttribute("hx-swap-oob") || "").split(":")[1];
      var selector = target ? target.trim() : "#" + part.id;
      if (selector === "#" || !document.querySelector(selector)) part.remove();
    });
    return message;
  }

  // A change in another sprint reaches a sprint's page only when it is for me alone (a
  // task freed from me): of it, this page takes the toast and nothing else.
  function aboutAnotherSprint(message) {
    var here = board.getAttribute("data-sprint-id");
    var live = message.querySelector("template[data-live-card]");
    if (!here || !live || message.querySelector("template[data-live-board]")) return false;
    return live.getAttribute("data-sprint-id") !== here;
  }

  function onlyToasts(message) {
    var kept = document.createDocumentFragment();
    message.querySelectorAll('[hx-swap-oob^="beforeend:#toasts"]').forEach(function (part) { kept.appendChild(part); });
    return kept;
  }

  // While a card is being dragged, messages wait (a card swapped out from under the
  // pointer would end the drag); they are taken in, in order, once it is dropped.
  var held = null;

  // Once the page is on its way out (a plain form posted, a link followed), a change
  // arriving must not reload it: that reload would take the place of where the person
  // is going, and eat the sentence waiting there for them.
  var leaving = false;
  window.addEventListener("beforeunload", function () {
    leaving = true;
    // A navigation that was called off (Esc, a download) leaves the page here: live again.
    setTimeout(function () { leaving = false; }, 5000);
  });
  window.addEventListener("pageshow", function (event) {
    leaving = false;
    // Back from the browser's page cache with its stream closed on the way out: fresh.
    if (event.persisted) window.location.reload();
  });

  document.addEventListener("sprintboard:dragstart", function () { held = held || []; });
  document.addEventListener("sprintboard:dragend", function () {
    var waiting = held || [];
    held = null;
    waiting.forEach(function (args) { receive.apply(null, args); });
  });

  // One message (either transport), parsed once: our card placed, the rest (header,
  // toast) swapped out of band by htmx, then the counts and the cursor brought along.
  function receive(id, type, message) {
    if (leaving) return;
    if (held) { held.push([id, type, message]); return; }
    if (type === "reset") { reset(); return; }
    // Presence has no event id of its own (SSE repeats the last one): never a duplicate.
    if (type === "presence") { (editPage ? editingToo : applyPresence)(message); synced(); return; }
    if (id && id <= cursor()) return; // already shown: drop the duplicate
    if (aboutAnotherSprint(message)) {
      htmx.swap(board, onlyToasts(message), { swapStyle: "none", swapDelay: 0, settleDelay: 0 });
      if (id) advance(id);
      adoptToasts();
      return;
    }
    if (editPage) {
      noteChange(message);
      if (id) advance(id);
      synced();
      return;
    }
    if (backlogPage) {
      if (touchesBacklog(message)) refreshBacklog();
    } else if (minePage) {
      if (touchesMine(message)) refreshMine();
    } else if (taskPage) {
      var reshaped = message.querySelector("template[data-live-board]");
      if (concernsTaskPage(reshaped)) {
        // The task's story moved, or its sprint changed or completed: a task's page is
        // light, and a reload follows it wherever it went (with the buttons it now has).
        window.location.reload();
        return;
      }
      if (!reshaped) followTask(message);
    } else if (message.querySelector("template[data-live-board]")) {
      refreshBoard();
    } else if (message.querySelector("template[data-live-story]")) {
      // A story was added or renamed: its group (and every card's story name) changed.
      needsRefresh = true;
    } else {
      var live = message.querySelector("template[data-live-card]");
      var card = live && live.content.querySelector(".card");
      if (card) placeCard(document.importNode(card, true));
      applyCounts(message);
    }
    htmx.swap(board, withoutStrangers(message), { swapStyle: "none", swapDelay: 0, settleDelay: 0 });
    if (id) advance(id);
    recount();
    paintViewers();
    adoptToasts();
    synced();
    if (needsRefresh) {
      needsRefresh = false;
      // A card belongs to a group this page has never seen (a new story): fetch the groups.
      htmx.ajax("GET", window.location.href, { target: "#board-groups", select: "#board-groups", swap: "outerHTML" })
        .then(function () { recount(); paintViewers(); });
    }
  }

  if (transport === "ws") {
    board.addEventListener("htmx:wsOpen", connected);
    board.addEventListener("htmx:wsClose", function () { lost(); checkSession(); });
    board.addEventListener("htmx:wsError", lost);
    board.addEventListener("htmx:wsBeforeMessage", function (event) {
      event.preventDefault(); // handled here, in one pass
      var message = parse(event.detail.message);
      var tagged = message.querySelector("template[data-event-id]");
      var type = message.querySelector("template[data-live-reset]") ? "reset"
        : message.querySelector("template[data-live-presence]") ? "presence" : "message";
      receive(tagged ? parseInt(tagged.getAttribute("data-event-id"), 10) : 0, type, message);
    });
  } else {
    board.addEventListener("htmx:sseOpen", connected);
    board.addEventListener("htmx:sseError", function (event) {
      lost();
      var source = event.detail.source;
      // The server answered, and not with a stream: maybe the session is gone.
      if (source && source.readyState === EventSource.CLOSED) checkSession();
    });
    board.addEventListener("htmx:sseBeforeMessage", function (event) {
      event.preventDefault(); // handled here, in one pass
      var message = event.detail;
      receive(parseInt(message.lastEventId, 10) || 0, message.type, parse(message.data));
    });
  }

  // My own action's answer, on a board: its card is placed as a teammate's would be (the
  // answer holds that card and the counts, and the header when it moved, which htmx
  // swaps out of band), whatever grouping and filters this page has.
  // (Heard on the form itself: a change arriving meanwhile may have replaced its card,
  // and an event on a form no longer in the page does not reach the body.)
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.matches && form.matches("form[data-action]")) {
      form.addEventListener("htmx:afterSettle", ownAnswer, { once: true });
    }
  });

  function ownAnswer(event) {
    var xhr = event.detail.xhr;
    if (board.id === "board" && xhr && xhr.responseText) {
      var message = parse(xhr.responseText);
      var live = message.querySelector("template[data-live-card][data-own]");
      var card = live && live.content.querySelector(".card");
      if (card && live.getAttribute("data-sprint-id") === board.getAttribute("data-sprint-id")) {
        placeCard(document.importNode(card, true));
      } else if (card) {
        // The task is no longer this sprint's (its work went on): off this board.
        var gone = document.getElementById(card.id);
        if (gone) gone.remove();
      }
      applyCounts(message);
    }
    recount();
    paintViewers();
  }
})();
