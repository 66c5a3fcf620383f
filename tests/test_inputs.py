"""The parsers of outside input (app/inputs.py), pinned by tables and by Hypothesis.

Every number a client sends goes through `whole_number` / `row_id`, every path it asks
to be sent to after sign-in through `safe_next`, every JSON body through the app's
request class. What a browser makes of a `next` value is asked of a real one
(Chromium's URL parser), not of a copy of its rules.
"""

from __future__ import annotations

import random
import string
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.async_api import Browser

from app.errors import Invalid
from app.inputs import MAX_ROW_ID, row_id, safe_next, whole_number
from app.tasks.editing import parse_estimate

# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("7", 7),
        ("0042", 42),
        ("2147483647", MAX_ROW_ID),
        ("2147483648", None),  # one past a 32-bit id
        ("9" * 11, None),
        ("9" * 5000, None),  # int() would refuse it with a ValueError (a 500)
        ("１", None),  # fullwidth digit one
        ("٣", None),  # Arabic-Indic three
        ("²", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1 ", None),
        ("1_000", None),
        ("0x10", None),
        ("", None),
        ("1\n", None),
    ],
)
def test_row_ids_are_ascii_digits_of_bounded_length(text: str, expected: int | None) -> None:
    assert row_id(text) == expected


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_no_text_makes_the_number_parsers_raise(text: str) -> None:
    number = whole_number(text)
    if number is not None:
        assert text.isascii() and text.isdigit() and len(text) <= 10 and int(text) == number
    identifier = row_id(text)
    assert identifier is None or 0 <= identifier <= MAX_ROW_ID


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans()))
def test_form_numbers_are_a_whole_number_in_range_or_a_sentence(value: object) -> None:
    try:
        hours = parse_estimate(value)
    except Invalid as refusal:
        assert refusal.field == "estimate_hours" and refusal.message
    else:
        assert hours is None or 1 <= hours <= 40


def test_a_form_field_in_another_script_is_refused() -> None:
    with pytest.raises(Invalid):
        parse_estimate("٣")
    with pytest.raises(Invalid):
        parse_estimate("３")
    assert parse_estimate(" 3 ") == 3


# --- where to go after sign-in ------------------------------------------------------------

# Values a browser would read as another origin, directly or once decoded.
HOSTILE_NEXT = [
    "//evil.example/phish",
    "/\\evil.example/phish",
    "\\\\evil.example/phish",
    "/\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "/%5Cevil.example/phish",  # what the probe sent, once decoded by the query string
    "/%5cevil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%252F%252Fevil.example",  # encoded twice
    "/%25255Cevil.example",  # encoded three times
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    "",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/" + "a" * 3000,
]
LEGITIMATE_NEXT = [
    "/",
    "/o/acme/sprints/1",
    "/o/acme/sprints/1?group=status&status=owned&status=inprogress",
    "/o/acme/tasks/3#history",
    "/settings/tokens",
    "/o/acme/sprints/1?q=100%25",
]


@pytest.mark.parametrize("value", HOSTILE_NEXT)
def test_anything_that_could_leave_the_site_falls_back_to_the_front_page(value: str) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value", LEGITIMATE_NEXT)
def test_a_path_of_this_site_is_kept(value: str) -> None:
    assert safe_next(value) == value


# Paths built of the pieces that matter: slashes both ways, controls, schemes' colons,
# and percent-encoded forms of them.
PIECES = [
    *string.ascii_letters[:6],
    *"0123/\\:%?#&=.-_ @\t\r\n",
    "%2F",
    "%5C",
    "%09",
    "%0A",
    "%25",
    "\x00",
    "\x1f",
    "\x7f",
    "／",
    "＼",
    "\u2028",
    "http:",
    "//",
]
PATHLIKE = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(PATHLIKE)
def test_safe_next_gives_back_the_value_or_the_front_page(value: str) -> None:
    result = safe_next(value)
    assert result in ("/", value)
    if result == value:
        assert value.startswith("/") and not value.startswith("//") and "\\" not in value


@pytest.mark.browser
async def test_chromium_keeps_every_accepted_next_on_this_site(browser: Browser) -> None:
    """What the browser does with a Location header is the truth: ask Chromium's URL
    parser about every value `safe_next` lets through, hostile-looking ones included."""
    rng = random.Random(20261202)  # the same candidates every run
    candidates = ["/" + "".join(rng.choices(PIECES, k=rng.randint(0, 10))) for _ in range(3000)]
    accepted = [v for v in candidates if safe_next(v) == v]
    accepted += LEGITIMATE_NEXT + [quote(v, safe="/?&=%#") for v in LEGITIMATE_NEXT]
    page = await browser.new_page()
    await page.goto("about:blank")
    origins = await page.evaluate(
        "(values) => values.map((v) => new URL(v, 'http://board.example:8000/o/acme/').origin)",
        accepted,
    )
    leaving = [
        v
        for v, origin in zip(accepted, origins, strict=True)
        if origin != "http://board.example:8000"
    ]
    assert len(accepted) > 100 and leaving == []
    # And the table is real: Chromium leaves the site for each undecoded hostile value.
    raw = [
        "//evil.example/phish",
        "/\\evil.example/phish",
        "\\\\evil.example/phish",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "https://evil.example/",
    ]
    origins = await page.evaluate(
        "(values) => values.map((v) => new URL(v, 'http://board.example:8000/').origin)", raw
    )
    assert all(origin != "http://board.example:8000" for origin in origins), origins
