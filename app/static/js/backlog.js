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
  function move(id, before) {
    var body = new URLSearchParams({ csrf_token: csrf(), sprint_id: "", before: before || "" });
    return fetch("/o/" + document.getElementById("backlog-live").getAttribute("data-org") + "/stories/" + id + "/move", {
      method: "POST", body: body, credentials: "same-origin", headers: { "HX-Request": "true" },
    }).then(function (response) { return response.text(); })
      .then(say)
      .then(function () {
        return htmx.ajax("GET", window.location.pathname, { target: "#backlog-stories", select: "#backlog-stories", swap: "outerHTML" });
      })
      .then(function () {
        var story = document.getElementById("backlog-story-" + id);
        if (story) story.focus({ preventScroll: false });
      });
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
        move(idOf(story), next && next.classList.contains("backlog-story") ? idOf(next) : "");
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
