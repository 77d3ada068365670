"""The notification cascade with real clients, a real SMTP relay and real replies by email.

The session's component runs with the timers of ``CASCADE_TIMERS`` (seconds)
and sends its email to the test's SMTP server (``mailbox``); replies go to the
component's own inbound SMTP server, as a company's or a customer's mail
server would send them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.clients import chat, child, is_message, local, new_id
from tests.integration.conftest import (
    DOMAIN,
    PAGE_URL,
    RUN,
    ComponentProcess,
    MakeCompany,
    presence_shows,
    register,
)
from tests.integration.mailbox import Mailbox, text_of
from tests.integration.push_endpoint import PushEndpoint, verify_vapid
from tests.integration.test_requests import day_after_tomorrow

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NOTIFY = "urn:orgchat:notify:0"
MARKERS = "urn:xmpp:chat-markers:0"


def mail_address(name: str) -> str:
    return f"{name}-{RUN}-{new_id()}@mail.example"


async def reply_by_email(
    component: ComponentProcess,
    to: str,
    sender: str,
    text: str,
    *,
    quoted: str = "",
    message_id: str | None = None,
) -> tuple[int, str]:
    """Send a reply as a mail server would; returns the server's (code, message)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Re: your message"
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="mail.example")
    body = text
    if quoted:
        body += "\n\nOn Mon, 30 Nov 2026 at 10:00, orgchat <noreply@biz.localhost> wrote:\n"
        body += "\n".join(f"> {line}" for line in quoted.splitlines())
    message.set_content(body)
    try:
        response = await aiosmtplib.send(
            message,
            hostname="127.0.0.1",
            port=component.inbound_port,
            sender=sender,
            recipients=[to],
        )
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusal = exc.recipients[0]
        return refusal.code, refusal.message
    return 250, response[1]


async def iq(client: Any, payload: str, itype: str = "set", lang: str | None = None) -> Any:
    iq_id = new_id()
    lang_attr = f' xml:lang="{lang}"' if lang else ""
    client.send_xml(f'<iq type="{itype}" to="{DOMAIN}" id="{iq_id}"{lang_attr}>{payload}</iq>')
    return await client.inbox.expect(lambda el: local(el.tag) == "iq" and el.get("id") == iq_id)


async def customer_online(rds: aioredis.Redis, jid: str, wait: float = 10) -> None:
    """The component knows the customer is online (roster added, presence probed)."""
    for _ in range(int(wait / 0.1)):
        if await presence_shows(rds, jid):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{jid} never seen online")


async def customer_offline(rds: aioredis.Redis, jid: str, wait: float = 10) -> None:
    for _ in range(int(wait / 0.1)):
        if not await presence_shows(rds, jid):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{jid} still online")


async def log_out(customer: Any, rds: aioredis.Redis, jid: str) -> None:
    """Log the customer out once the component knew them online, and wait until it
    knows they are gone (the company is in their roster after their first message)."""
    await customer_online(rds, jid)
    await customer.stop()
    await customer_offline(rds, jid)


async def confirm_email(
    customer: Any, mailbox: Mailbox, address: str, lang: str | None = None
) -> None:
    """Set and confirm the customer's email address with the custom IQs (in ``lang``)."""
    answer = await iq(
        customer, f'<settings xmlns="{NOTIFY}"><email>{address}</email></settings>', lang=lang
    )
    assert answer.get("type") == "result"
    [code_mail] = await mailbox.expect(address)
    code = str(code_mail["Subject"]).rsplit(" ", 1)[1]
    answer = await iq(customer, f'<confirm xmlns="{NOTIFY}" code="{code}"/>')
    assert answer.get("type") == "result"
    settings = child(answer, "settings", NOTIFY)
    email_el = child(settings, "email", NOTIFY) if settings is not None else None
    assert email_el is not None and email_el.get("confirmed") == "true"
    mailbox.messages.clear()


async def test_company_offline_one_email_and_the_reply_lands_in_the_chat(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    component: ComponentProcess,
    db: asyncpg.Connection,
) -> None:
    address = mail_address("shop")
    company = await make_company(agents=1, name="Offline Shop", email=address)
    customer = await clients(await register("writer"))
    customer.send_xml(chat(company.jid, "Do you have &lt;b&gt;size 42&lt;/b&gt;?"))
    customer.send_xml(chat(company.jid, "And in blue?"))

    [mail] = await mailbox.expect(address)
    text = text_of(mail)
    assert "Do you have <b>size 42</b>?" in text and "And in blue?" in text
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and "&lt;b&gt;size 42&lt;/b&gt;" in str(html.get_content())
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["List-Unsubscribe"] and mail["In-Reply-To"] and mail["References"]
    reply_to = email.utils.parseaddr(str(mail["Reply-To"]))[1]
    assert reply_to.endswith("@reply.biz.localhost")
    await mailbox.nothing_to(address, 2)  # both messages in that one email

    # The company answers by email: only the new text reaches the customer's chat.
    code, _ = await reply_by_email(
        component, reply_to, address, "Yes, both!", quoted="Do you have size 42?"
    )
    assert code == 250
    got = await customer.inbox.expect(is_message("Yes, both!"))
    assert got.get("from", "").split("/")[0] == company.jid
    row = await db.fetchrow(
        "SELECT direction, body FROM messages WHERE body = 'Yes, both!' ORDER BY id DESC LIMIT 1"
    )
    assert row is not None and row["direction"] == "out"

    # Anybody else, or a forged address: refused with the right SMTP code.
    code, _ = await reply_by_email(component, reply_to, "intruder@mail.example", "spam")
    assert code == 550
    forged = reply_to.replace("+", "+x", 1)
    code, _ = await reply_by_email(component, forged, address, "hello")
    assert code == 550
    await customer.inbox.absent(is_message("spam"))


async def test_reaction_window_and_read_markers(
    make_company: MakeCompany, clients: Any, mailbox: Mailbox
) -> None:
    address = mail_address("busy")
    company = await make_company(agents=1, name="Busy Shop", email=address)
    agent = await clients(company.agents[0])
    customer = await clients(await register("waiting"))

    # An agent reads it in time: no email.
    customer.send_xml(chat(company.jid, "Read me"))
    got = await agent.inbox.expect(is_message("Read me"))
    conv = got.get("from", "").split("/")[0]
    agent.send_xml(chat(conv, None, extra=f'<displayed xmlns="{MARKERS}" id="{got.get("id")}"/>'))
    await mailbox.nothing_to(address, 4.5)

    # Nobody reacts within the window: the company is emailed anyway.
    customer.send_xml(chat(company.jid, "Hello? Anyone?"))
    await agent.inbox.expect(is_message("Hello? Anyone?"))
    [mail] = await mailbox.expect(address, wait=15)
    assert "Hello? Anyone?" in text_of(mail) and "Read me" not in text_of(mail)
    assert "answered" in text_of(mail)


async def test_customer_email_reply_and_unsubscribe(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    component: ComponentProcess,
    rds: aioredis.Redis,
) -> None:
    company = await make_company(agents=1, name="Answering Shop")
    agent = await clients(company.agents[0])
    account = await register("reader")
    customer = await clients(account)
    address = mail_address("reader")
    await confirm_email(customer, mailbox, address)

    customer.send_xml(chat(company.jid, "Is it in stock?"))
    got = await agent.inbox.expect(is_message("Is it in stock?"))
    conv = got.get("from", "").split("/")[0]

    # Online and reading: the live message is enough.
    await customer_online(rds, account.jid)
    agent.send_xml(chat(conv, "Let me check."))
    answer = await customer.inbox.expect(is_message("Let me check."))
    customer.send_xml(
        chat(company.jid, None, extra=f'<displayed xmlns="{MARKERS}" id="{answer.get("id")}"/>')
    )
    await mailbox.nothing_to(address, 4.5)
    # Online but not reading: still nothing (no email to people who are online).
    agent.send_xml(chat(conv, "Checking the back room."))
    await customer.inbox.expect(is_message("Checking the back room."))
    await mailbox.nothing_to(address, 4.5)

    # Offline: one email after T2 with everything unseen.
    await log_out(customer, rds, account.jid)
    agent.send_xml(chat(conv, "Yes, 3 left."))
    [mail] = await mailbox.expect(address, wait=15)
    text = text_of(mail)
    assert "Yes, 3 left." in text and "Checking the back room." in text
    assert "Let me check." not in text and "Answering Shop" in str(mail["Subject"])

    # The customer replies by email: the agent gets it in the conversation.
    reply_to = email.utils.parseaddr(str(mail["Reply-To"]))[1]
    code, _ = await reply_by_email(component, reply_to, address, "Great, I'll come today.")
    assert code == 250
    await agent.inbox.expect(is_message("Great, I'll come today."))

    # List-Unsubscribe: no more email.
    unsubscribe = str(mail["List-Unsubscribe"]).strip("<>").removeprefix("mailto:")
    code, _ = await reply_by_email(component, unsubscribe, "anyone@mail.example", "unsubscribe")
    assert code == 250
    mailbox.messages.clear()
    agent.send_xml(chat(conv, "See you!"))
    await mailbox.nothing_to(address, 5)


async def test_emails_are_in_the_language_the_address_was_set_in(
    make_company: MakeCompany, clients: Any, mailbox: Mailbox, rds: aioredis.Redis
) -> None:
    company = await make_company(agents=1, name="Russian Shop")
    agent = await clients(company.agents[0])
    account = await register("russian")
    customer = await clients(account)
    address = mail_address("russian")
    await confirm_email(customer, mailbox, address, lang="ru")
    customer.send_xml(chat(company.jid, "Есть в наличии?"))
    got = await agent.inbox.expect(is_message("Есть в наличии?"))
    await log_out(customer, rds, account.jid)
    agent.send_xml(chat(got.get("from", "").split("/")[0], "Да, три штуки."))
    [mail] = await mailbox.expect(address, wait=15)
    text = text_of(mail)
    assert "Здравствуйте!" in text and "Ответьте на это письмо, чтобы ответить в чате." in text
    assert "Да, три штуки." in text and "Reply to this email" not in text


async def test_smtp_down_then_back_and_permanent_failure(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    db: asyncpg.Connection,
) -> None:
    customer = await clients(await register("patient"))
    address = mail_address("flaky")
    company = await make_company(agents=1, name="Flaky Mail Shop", email=address)
    await mailbox.stop()
    try:
        customer.send_xml(chat(company.jid, "Sent while the relay is down"))
        await asyncio.sleep(3)  # connection refused, retried
        mailbox.mode = "tempfail"
        await mailbox.start()
        await asyncio.sleep(2)  # 451, retried
    finally:
        mailbox.mode = "accept"
        if not mailbox.running:
            await mailbox.start()
    [mail] = await mailbox.expect(address, wait=15)
    assert "Sent while the relay is down" in text_of(mail)
    await mailbox.nothing_to(address, 2)  # once, not once per attempt

    refused = mail_address("refused")
    other = await make_company(agents=1, name="Refused Mail Shop", email=refused)
    mailbox.mode = "permfail"
    try:
        customer.send_xml(chat(other.jid, "Nobody will read this by email"))
        state = None
        for _ in range(50):
            state = await db.fetchval(
                "SELECT j.state FROM notify_jobs j JOIN conversations c ON c.id = j.conversation_id"
                " JOIN companies co ON co.id = c.company_id WHERE co.slug = $1",
                other.slug,
            )
            if state == "failed":
                break
            await asyncio.sleep(0.2)
        assert state == "failed"
    finally:
        mailbox.mode = "accept"


async def test_away_reply_once_per_closed_period(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(
        agents=1, name="Night Shop", hours=f"{day_after_tomorrow()} 09:00-18:00",
        timezone="Asia/Novosibirsk",
    )  # fmt: skip
    customer = await clients(await register("night"))
    customer.send_xml(chat(company.jid, "Are you open?"))
    away = await customer.inbox.expect(
        lambda el: "closed now" in (el.findtext("{jabber:client}body") or "")
    )
    body = away.findtext("{jabber:client}body") or ""
    assert "Night Shop" in body and "09:00" in body and "Asia/Novosibirsk" in body
    # The same moment as an instant, for clients to show in their reader's zone:
    # 09:00 in Novosibirsk (UTC+7) is 02:00 UTC.
    opens = away.find("{urn:orgchat:away:0}opens")
    assert opens is not None and (opens.get("at") or "").endswith("T02:00:00Z"), body
    customer.send_xml(chat(company.jid, "Hello?"))
    await customer.inbox.absent(
        lambda el: "closed now" in (el.findtext("{jabber:client}body") or ""), wait=2
    )


async def test_no_away_reply_while_an_agent_is_online(
    make_company: MakeCompany, clients: Any, rds: aioredis.Redis
) -> None:
    company = await make_company(
        agents=1, name="Late Shop", hours=f"{day_after_tomorrow()} 09:00-18:00",
        timezone="Asia/Novosibirsk",
    )  # fmt: skip
    agent = await clients(company.agents[0])
    await customer_online(rds, company.agents[0].jid)  # the component sees the agent
    customer = await clients(await register("late"))
    customer.send_xml(chat(company.jid, "Anyone there?"))
    await agent.inbox.expect(is_message("Anyone there?"))
    # An away reply waits up to 3 s for the client's time (XEP-0202) first.
    await customer.inbox.absent(
        lambda el: "closed now" in (el.findtext("{jabber:client}body") or ""), wait=5
    )


async def test_push_then_email_to_an_offline_customer(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    db: asyncpg.Connection,
    rds: aioredis.Redis,
) -> None:
    company = await make_company(agents=1, name="Push Shop")
    agent = await clients(company.agents[0])
    account = await register("pushed")
    customer = await clients(account)
    address = mail_address("pushed")
    await confirm_email(customer, mailbox, address)
    async with PushEndpoint() as service:
        device = service.subscribe()
        answer = await iq(
            customer,
            f'<subscribe xmlns="{NOTIFY}" endpoint="{device.endpoint}" '
            f'p256dh="{device.p256dh}" auth="{device.auth}"/>',
        )
        assert answer.get("type") == "result"
        settings = child(
            await iq(customer, f'<settings xmlns="{NOTIFY}"/>', "get"), "settings", NOTIFY
        )
        push = [c for c in settings if c.get("name") == "push"] if settings is not None else []
        assert push and push[0].get("devices") == "1" and push[0].get("key")

        customer.send_xml(chat(company.jid, "Tell me when it arrives"))
        got = await agent.inbox.expect(is_message("Tell me when it arrives"))
        await log_out(customer, rds, account.jid)
        agent.send_xml(chat(got.get("from", "").split("/")[0], "It just arrived!"))

        # T1: one push, encrypted for this device, signed with the service's VAPID key.
        for _ in range(100):
            if service.requests:
                break
            await asyncio.sleep(0.1)
        [request] = service.requests
        verify_vapid(request.headers["authorization"], device.endpoint, "mailto:ops@biz.localhost")
        payload = json.loads(device.decrypt(request.body))
        assert payload["title"] == "Push Shop" and payload["body"] == "It just arrived!"
        assert payload["jid"] == company.jid
        assert payload["link"] == f"{PAGE_URL}&company={company.slug}"  # the chat on the page

        # T2: still unseen, one email too; the push is not repeated.
        [mail] = await mailbox.expect(address, wait=15)
        assert "It just arrived!" in text_of(mail)
        assert len(service.requests) == 1

        # The device is gone (410): its subscription is forgotten.
        service.answer(410)
        await asyncio.sleep(4.5)  # past the quiet period
        agent.send_xml(chat(got.get("from", "").split("/")[0], "Still there?"))
        for _ in range(100):
            if len(service.requests) == 2:
                break
            await asyncio.sleep(0.1)
        for _ in range(50):
            left = await db.fetchval(
                "SELECT count(*) FROM push_subscriptions WHERE address = $1", account.jid
            )
            if left == 0:
                break
            await asyncio.sleep(0.1)
        assert left == 0


async def test_customer_back_before_t2_gets_no_email(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    rds: aioredis.Redis,
) -> None:
    company = await make_company(agents=1, name="Patient Shop")
    agent = await clients(company.agents[0])
    account = await register("returning")
    customer = await clients(account)
    address = mail_address("returning")
    await confirm_email(customer, mailbox, address)
    customer.send_xml(chat(company.jid, "I'll be right back"))
    got = await agent.inbox.expect(is_message("I'll be right back"))
    await log_out(customer, rds, account.jid)
    agent.send_xml(chat(got.get("from", "").split("/")[0], "Take your time."))
    await clients(account, resource="phone")  # back online well before T2
    await customer_online(rds, account.jid)
    await mailbox.nothing_to(address, 4.5)


async def test_a_pending_email_survives_a_component_restart(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    component: ComponentProcess,
) -> None:
    address = mail_address("restart")
    company = await make_company(agents=1, name="Restart Shop", email=address)
    agent = await clients(company.agents[0])  # online: the reaction window (3 s) applies
    customer = await clients(await register("restart"))
    customer.send_xml(chat(company.jid, "Before the restart"))
    await agent.inbox.expect(is_message("Before the restart"))
    assert await component.stop() == 0
    try:
        await asyncio.sleep(3.5)  # the job falls due while no component runs
        await mailbox.nothing_to(address, 0)
    finally:
        await component.start()
    [mail] = await mailbox.expect(address, wait=15)
    assert "Before the restart" in text_of(mail)
    await mailbox.nothing_to(address, 2)


async def test_quiet_hours_postpone_the_email(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    rds: aioredis.Redis,
    db: asyncpg.Connection,
) -> None:
    company = await make_company(agents=1, name="Late Shop")
    agent = await clients(company.agents[0])
    account = await register("sleeper")
    customer = await clients(account)
    address = mail_address("sleeper")
    await confirm_email(customer, mailbox, address)
    now = dt.datetime.now(dt.UTC)
    spec = f"{now - dt.timedelta(hours=1):%H:%M}-{now + dt.timedelta(hours=1):%H:%M}"
    answer = await iq(
        customer,
        f'<settings xmlns="{NOTIFY}"><quiet-hours tz="UTC">{spec}</quiet-hours></settings>',
    )
    settings = child(answer, "settings", NOTIFY)
    quiet = child(settings, "quiet-hours", NOTIFY) if settings is not None else None
    assert quiet is not None and quiet.text == spec
    bad = await iq(
        customer, f'<settings xmlns="{NOTIFY}"><quiet-hours>late</quiet-hours></settings>'
    )
    assert bad.get("type") == "error"

    customer.send_xml(chat(company.jid, "Answer tomorrow is fine"))
    got = await agent.inbox.expect(is_message("Answer tomorrow is fine"))
    await log_out(customer, rds, account.jid)
    agent.send_xml(chat(got.get("from", "").split("/")[0], "Noted!"))
    await mailbox.nothing_to(address, 4.5)
    due = await db.fetchval(
        "SELECT j.due_at FROM notify_jobs j JOIN conversations c ON c.id = j.conversation_id"
        " WHERE c.customer_jid = $1 AND j.channel = 'email' AND j.state = 'pending'",
        account.jid,
    )
    assert due is not None and due >= now + dt.timedelta(minutes=59)  # the end of the quiet hours
