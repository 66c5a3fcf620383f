// Ordering the backlog by hand and by keyboard (owners): drag a story, or focus it and
// press Alt+↑ / Alt+↓. Either way the same request as the Up / Down buttons goes out
// (they work without any of this); the list is then fetched again, as every other open
// backlog fetches it when the move arrives live. Dragging itself is SortableJS's.
(function () {
  "use strict";

  if (!window.htmx) return;
  var owner = document.body.getAttribute("data-role") === "owner";

  function list() { return document.getElementById("backlog-stories"); }

  function csrf() {
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  function say(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    var fresh = holder.content.querySelector("#flash");
    var old = document.getElementById("flash");
    if (fresh && old) { fresh.removeAttribute("hx-swap-oob"); old.replaceWith(fresh); }
  }

  // Put story `id` before story `before` (empty: last), then show the list as it is.
  // Signed out meanwhile: the answer says so, nothing moved, and a dragged story goes
  // back (`undo`) rather than seem moved.
  function move(id, before, undo) {
    var body = new URLSearchParams({ csrf_token: csrf(), sprint_id: "", before: before || "" });
    var signedOut = false;
    return fetch("/o/" + document.getElementById("backlog-live").getAttribute("data-org") + "/stories/" + id + "/move", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "HX-Request": "true", "HX-Current-URL": window.location.href },
    }).then(function (response) {
      signedOut = response.status === 401;
      return response.text();
    })
      .then(say)
      .then(function () {
        if (!signedOut) return;
        if (undo) undo();
        document.body.dispatchEvent(new CustomEvent("sprintboard:signed-out"));
        throw new Error("signed out"); // (nothing more to fetch)
      })
      .then(function () {
        return htmx.ajax("GET", window.location.pathname, { target: "#backlog-stories", select: "#backlog-stories", swap: "outerHTML" });
      })
      .then(function () {
        var story = document.getElementById("backlog-story-" + id);
        if (story) story.focus({ preventScroll: false });
      })
      .catch(function () { /* said on the page already */ });
  }

  function idOf(el) { return el ? el.getAttribute("data-backlog-story-id") : ""; }

  var sortable = null;
  function arm() {
    var ol = list();
    if (!owner || !ol || !window.Sortable || ol === (sortable && sortable.el)) return;
    sortable = window.Sortable.create(ol, {
      draggable: ".backlog-story",
      animation: 120,
      filter: "a, button, select, input",
      preventOnFilter: false,
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        var story = event.item;
        var next = story.nextElementSibling;
        move(idOf(story), next && next.classList.contains("backlog-story") ? idOf(next) : "", function () {
          var ol = list();
          var stories = ol.querySelectorAll(":scope > .backlog-story");
          var at = event.oldIndex > event.newIndex ? event.oldIndex + 1 : event.oldIndex;
          ol.insertBefore(story, stories[at] || null);
        });
      },
    });
  }

  document.addEventListener("DOMContentLoaded", arm);
  document.body.addEventListener("htmx:afterSettle", arm);

  document.addEventListener("keydown", function (event) {
    if (!owner || !event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    var story = event.target.closest && event.target.closest(".backlog-story");
    if (!story || event.target !== story) return;
    event.preventDefault();
    if (event.key === "ArrowUp") {
      var previous = story.previousElementSibling;
      if (previous) move(idOf(story), idOf(previous));
    } else {
      var next = story.nextElementSibling;
      if (next) move(idOf(story), next.nextElementSibling ? idOf(next.nextElementSibling) : "");
    }
  });
})();
