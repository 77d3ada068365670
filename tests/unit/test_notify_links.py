"""Links to the web page's chat with a company (component.features.notify.links)."""

from __future__ import annotations

import pytest

from component.ejabberd_api import EjabberdApi
from component.features.notify.links import PageLinks


def links(page_url: str) -> PageLinks:
    # chat() builds a URL and calls nothing: the API is never reached here.
    return PageLinks(
        page_url=page_url,
        api=EjabberdApi("http://127.0.0.1:9/api"),
        vhost="localhost",
        login_ttl=60,
    )


@pytest.mark.parametrize(
    ("page_url", "expected"),
    [
        ("http://127.0.0.1:5280/web/", "http://127.0.0.1:5280/web/?company=pizza-napoli"),
        (
            "https://example.org/web/?xmpp=example.org",
            "https://example.org/web/?xmpp=example.org&company=pizza-napoli",
        ),
        # A company= or a fragment in the setting never doubles up.
        (
            "https://example.org/web/?company=other&lang=ru#top",
            "https://example.org/web/?lang=ru&company=pizza-napoli",
        ),
    ],
)
def test_the_chat_link_keeps_the_pages_own_parameters(page_url: str, expected: str) -> None:
    assert links(page_url).chat("pizza-napoli") == expected


def test_a_slug_is_escaped() -> None:
    assert links("https://example.org/web/").chat("a b&c") == (
        "https://example.org/web/?company=a+b%26c"
    )


@pytest.mark.asyncio
async def test_no_login_for_an_account_with_its_own_password() -> None:
    """Not a guest (or a guest of another host): the plain link, ejabberd never asked."""
    page = links("https://example.org/web/")
    for jid in ("anna@localhost", "guest-0a1b2c3d@example.org", "guest-0A1B2C3D@localhost"):
        link = await page.for_email("pizza-napoli", jid)
        assert (link.url, link.login_expires) == (
            "https://example.org/web/?company=pizza-napoli",
            None,
        )


@pytest.mark.parametrize("page_url", ["/web/", "xmpp:pizza@biz.localhost", "https:///web/"])
def test_the_page_url_must_be_an_http_address(page_url: str) -> None:
    with pytest.raises(ValueError, match=r"notify\.page_url"):
        links(page_url)
