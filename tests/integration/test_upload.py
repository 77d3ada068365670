"""Photos over HTTP File Upload (XEP-0363) on ejabberd, relayed as links (XEP-0066).

A customer asks the host's upload service (found by service discovery, as
clients find it) for a slot, PUTs a photo, and sends its address; the agent
gets the message with the link, as a file a client shows inline, and the
photo is there to fetch. What is too big is refused before anything is
stored.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import uuid
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.integration.clients import chat, child, is_message, local, new_id
from tests.integration.conftest import VHOST, MakeCompany, register

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NS_UPLOAD = "urn:xmpp:http:upload:0"
NS_OOB = "jabber:x:oob"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
#: A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5d4e5"
    "9a0000000049454e44ae426082"
)


async def iq(client: Any, to: str, payload: str, itype: str = "get") -> ET.Element:
    iid = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iid}">{payload}</iq>')
    return await client.inbox.expect(lambda el: local(el.tag) == "iq" and el.get("id") == iid)


async def upload_service(client: Any) -> tuple[str, int]:
    """The host's upload service and its size limit, by service discovery."""
    items = await iq(client, VHOST, f'<query xmlns="{DISCO_ITEMS}"/>')
    for item in items.iter(f"{{{DISCO_ITEMS}}}item"):
        jid = item.get("jid") or ""
        info = await iq(client, jid, f'<query xmlns="{DISCO_INFO}"/>')
        features = {f.get("var") for f in info.iter(f"{{{DISCO_INFO}}}feature")}
        if NS_UPLOAD in features:
            sizes = [
                int(field.findtext("{jabber:x:data}value") or 0)
                for field in info.iter("{jabber:x:data}field")
                if field.get("var") == "max-file-size"
            ]
            return jid, max(sizes)
    raise AssertionError(f"no upload service among the items of {VHOST}: {ET.tostring(items)!r}")


def slot_request(name: str, size: int, ctype: str = "image/png") -> str:
    return f'<request xmlns="{NS_UPLOAD}" filename="{name}" size="{size}" content-type="{ctype}"/>'


def http(method: str, url: str, data: bytes | None = None, ctype: str = "image/png") -> Any:
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", ctype)
    return urllib.request.urlopen(request, timeout=10)


async def test_a_photo_reaches_the_agent_as_a_link_to_the_uploaded_file(
    make_company: MakeCompany, clients: Any
) -> None:
    shop = await make_company(agents=1, name="Tyre Shop")
    agent = await clients(shop.agents[0])
    customer = await clients(await register("photo"))

    service, max_size = await upload_service(customer)
    assert max_size == 10 * 1024 * 1024
    answer = await iq(customer, service, slot_request("tyre.png", len(PNG)))
    slot = child(answer, "slot", NS_UPLOAD)
    assert answer.get("type") == "result" and slot is not None, ET.tostring(answer)
    put = child(slot, "put", NS_UPLOAD)
    get = child(slot, "get", NS_UPLOAD)
    assert put is not None and get is not None
    put_url, get_url = put.get("url") or "", get.get("url") or ""
    # The page's origin: uploads need no cross-origin permission.
    assert put_url.startswith("http://127.0.0.1:5280/upload/"), put_url
    with await asyncio.to_thread(http, "PUT", put_url, PNG) as response:
        assert response.status == 201

    oob = f'<x xmlns="{NS_OOB}"><url>{get_url}</url></x>'
    customer.send_xml(chat(shop.jid, get_url, extra=oob))
    got = await agent.inbox.expect(is_message(get_url))
    link = child(got, "x", NS_OOB)
    assert link is not None and link.findtext(f"{{{NS_OOB}}}url") == get_url
    with await asyncio.to_thread(http, "GET", get_url) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read() == PNG


async def test_what_is_too_big_is_refused_before_it_is_stored(clients: Any) -> None:
    customer = await clients(await register("big"))
    service, max_size = await upload_service(customer)
    answer = await iq(customer, service, slot_request("huge.png", max_size + 1))
    assert answer.get("type") == "error"
    too_large = next(answer.iter(f"{{{NS_UPLOAD}}}file-too-large"), None)
    assert too_large is not None, ET.tostring(answer)
    # A slot is for the size it was asked for: a bigger body is refused.
    answer = await iq(customer, service, slot_request(f"{uuid.uuid4().hex}.png", 10))
    slot = child(answer, "slot", NS_UPLOAD)
    assert slot is not None
    put = child(slot, "put", NS_UPLOAD)
    assert put is not None
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(http, "PUT", put.get("url") or "", PNG)
    assert refused.value.code == 413
