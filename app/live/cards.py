"""Task cards, rendered once per version of a task and kept.

A card's markup is the same for every viewer (who is looking changes only CSS keyed on
its attributes: see base.html), so the board page, the answer to an action and the
broadcast of an event all take it from here, and a board of thousands of cards costs a
dictionary lookup per card once they have been seen. What a card shows beyond its task's
own columns (its story's title and place, its owner's name, whether its sprint is a
closed record) is in the key, so a change to any of them renders it afresh.

The form token of a page's visitor is not known to the cache: a cached card holds
`CSRF_SLOT`, which `for_page` fills with the visitor's token and `for_broadcast` empties
(pages with JavaScript send the token in a header).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape
from quart import current_app

from app.models import Organization, Task

CACHE_SIZE = 20_000  # cards: ten boards of 2,000, at about 1 KB each
# A comment cannot come out of the card's escaped text: nothing else in it matches.
CSRF_SLOT = Markup("<!--csrf-->")
_CSRF_FIELD = f'<input type="hidden" name="csrf_token" value="{CSRF_SLOT}">'
# Between cards rendered together: a comment, which no escaped text can hold (any "<"
# in a title or a name comes out as "&lt;").
_SEPARATOR = "<!--/card-->"
# Line breaks and the indentation around them. None of the markup keeps white space as
# it is (no <pre>, no descriptions), so such a run shows as one space. Runs within a
# line are left alone: they may be inside a title or an attribute value.
_WHITE_RUNS = re.compile(r"\s*\n\s*")

CardKey = tuple[Any, ...]


def compact(html: str) -> str:
    """The markup on one line: every byte of it is sent to every viewer."""
    return _WHITE_RUNS.sub(" ", html).strip()


def card_key(task: Task, *, closed: bool, scripted: bool) -> CardKey:
    """Everything a card shows: its task's version moves on with every change to the
    task; its story and owner are other rows; its buttons depend on whether its sprint
    is a closed record and on whether they come with it or from the page's script."""
    story, owner = task.story, task.owner
    return (
        task.id,
        task.version,
        story.title,
        story.position,
        owner.name if owner is not None else None,
        closed,
        scripted,
    )


def for_page(html: str, token: str) -> str:
    """A page holding cached cards, with the visitor's form token in their forms."""
    return html.replace(CSRF_SLOT, str(escape(token)))


def for_broadcast(card: str) -> str:
    """A cached card as every viewer receives it: no one's token."""
    return card.replace(_CSRF_FIELD, "")


class Cards:
    """The cache: the newest `size` cards rendered, by `card_key`."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._cards: OrderedDict[CardKey, Markup] = OrderedDict()
        self.rendered = 0  # cards rendered rather than found (for tests and the benchmark)

    async def render(
        self,
        tasks: Sequence[Task],
        *,
        org: Organization,
        closed: bool = False,
        scripted: bool = True,
        viewing: Mapping[int, Sequence[Any]] | None = None,
        url_for: Callable[..., str] | None = None,
    ) -> dict[int, Markup]:
        """Each task's card by task id, its form token left to `for_page`. `scripted`: its
        buttons left to the page's script (a page for a browser without JavaScript has
        them in every card). A card showing who is on its task's page (`viewing`, for
        the page without JavaScript) is rendered for this page alone; `url_for` is a
        broadcast's own."""
        found: dict[int, Markup] = {}
        missing: list[tuple[CardKey, Task]] = []
        for task in tasks:
            key = card_key(task, closed=closed, scripted=scripted)
            card = self._cards.get(key)
            if card is None:
                missing.append((key, task))
            else:
                self._cards.move_to_end(key)
                found[task.id] = card
        watched = [t for _, t in missing if viewing and viewing.get(t.id)]
        fresh = [(key, t) for key, t in missing if not (viewing and viewing.get(t.id))]
        extra: dict[str, Any] = {"closed": closed, "scripted": scripted}
        if url_for is not None:
            extra["url_for"] = url_for
        for task, card in zip(
            watched, await self._render(watched, org, viewing, extra), strict=True
        ):
            found[task.id] = card
        rendered = await self._render([t for _, t in fresh], org, None, extra)
        for (key, task), card in zip(fresh, rendered, strict=True):
            found[task.id] = card
            self._cards[key] = card
        while len(self._cards) > self.size:
            self._cards.popitem(last=False)
        return found

    async def _render(
        self,
        tasks: Sequence[Task],
        org: Organization,
        viewing: Mapping[int, Sequence[Any]] | None,
        extra: dict[str, Any],
    ) -> list[Markup]:
        """Render cards in one pass of the template (one per card costs far more). The
        template is rendered as it is, with the app's globals and what is passed here:
        none of a page's context processors (a card needs nothing of them, and one of
        them reads the database)."""
        if not tasks:
            return []
        template = current_app.jinja_env.get_template("tasks/_cards.html")
        html = await template.render_async(
            tasks=tasks,
            org=org,
            csrf=CSRF_SLOT,
            viewing=viewing or {},
            separator=Markup(_SEPARATOR),
            **extra,
        )
        cards = html.split(_SEPARATOR)[:-1]
        if len(cards) != len(tasks):  # (cannot happen: see _SEPARATOR)
            raise RuntimeError("cards rendered together could not be told apart")
        self.rendered += len(tasks)
        return [Markup(compact(card)) for card in cards]
