"""A company's card: vcard-temp (XEP-0054), vCard4 (XEP-0292) and the extended
information of its service discovery (XEP-0128, ``urn:orgchat:company:0``).

Pure builders over :class:`storage.models.Company`; the IQ handlers that
serve them are :mod:`component.features.directory.iq`.
"""

from __future__ import annotations

import datetime as dt
from xml.etree.ElementTree import Element, SubElement

from component import hours
from component.addressing import company_jid
from component.i18n import _, translate
from extensions.forms import Field, ResultForm
from storage.models import Company

NS_VCARD = "vcard-temp"
NS_VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
#: orgchat's FORM_TYPE of a company's extended disco#info (docs/protocol.md).
NS_COMPANY_INFO = "urn:orgchat:company:0"
SERVICE_NAME = "orgchat business messenger"


# -- XEP-0054 -------------------------------------------------------------------------


def vcard_temp(fn: str, nickname: str | None = None) -> Element:
    """A vcard-temp card with a name (the service; a customer, as agents see them)."""
    out = Element(f"{{{NS_VCARD}}}vCard")
    _text(out, "FN", fn)
    if nickname is not None:
        _text(out, "NICKNAME", nickname)
    return out


def company_vcard_temp(company: Company, domain: str, lang: str | None = None) -> Element:
    """A company's vcard-temp: name, email, street and city, phone, web site,
    category, opening hours and time zone, address."""
    out = vcard_temp(company.name, company.name)
    if company.email:
        email = SubElement(out, f"{{{NS_VCARD}}}EMAIL")
        SubElement(email, f"{{{NS_VCARD}}}INTERNET")
        _text(email, "USERID", company.email)
    if company.city or company.address:
        adr = SubElement(out, f"{{{NS_VCARD}}}ADR")
        SubElement(adr, f"{{{NS_VCARD}}}WORK")
        if company.address:
            _text(adr, "STREET", company.address)
        if company.city:
            _text(adr, "LOCALITY", company.city)
    if company.phone:
        tel = SubElement(out, f"{{{NS_VCARD}}}TEL")
        SubElement(tel, f"{{{NS_VCARD}}}WORK")
        SubElement(tel, f"{{{NS_VCARD}}}VOICE")
        _text(tel, "NUMBER", company.phone)
    if company.url:
        _text(out, "URL", company.url)
    if company.category:
        cats = SubElement(out, f"{{{NS_VCARD}}}CATEGORIES")
        _text(cats, "KEYWORD", company.category)
    _text(out, "DESC", card_note(company, lang))
    _text(out, "JABBERID", company_jid(company.slug, domain))
    return out


def _text(parent: Element, tag: str, text: str) -> None:
    SubElement(parent, f"{{{NS_VCARD}}}{tag}").text = text


# -- XEP-0292 -------------------------------------------------------------------


def company_vcard4(company: Company, domain: str, lang: str | None = None) -> Element:
    """A company's card in vCard4 XML (RFC 6350, RFC 6351), KIND ``org``."""
    card = Element(f"{{{NS_VCARD4}}}vcard")
    _prop(card, "fn", "text", company.name)
    _prop(card, "kind", "text", "org")
    if company.category:
        _prop(card, "categories", "text", company.category)
    if company.address or company.city:
        adr = SubElement(card, f"{{{NS_VCARD4}}}adr")
        _work(adr)
        # RFC 6351 value-adr: the seven components in order, empty when unknown.
        parts = {"street": company.address, "locality": company.city}
        for part in ("pobox", "ext", "street", "locality", "region", "code", "country"):
            SubElement(adr, f"{{{NS_VCARD4}}}{part}").text = parts.get(part) or ""
    if company.phone:
        tel = SubElement(card, f"{{{NS_VCARD4}}}tel")
        _work(tel, "voice")
        uri = tel_uri(company.phone)
        if uri is not None:
            SubElement(tel, f"{{{NS_VCARD4}}}uri").text = uri
        else:  # a local number: no tel: URI without a phone-context (RFC 3966 §5.1.5)
            SubElement(tel, f"{{{NS_VCARD4}}}text").text = company.phone
    if company.email:
        email = SubElement(card, f"{{{NS_VCARD4}}}email")
        _work(email)
        SubElement(email, f"{{{NS_VCARD4}}}text").text = company.email
    if company.url:
        _prop(card, "url", "uri", company.url)
    _prop(card, "impp", "uri", f"xmpp:{company_jid(company.slug, domain)}")
    _prop(card, "tz", "text", company.timezone)
    _prop(card, "note", "text", card_note(company, lang))
    return card


def service_vcard4(domain: str) -> Element:
    """XEP-0292 §6: the service's own card, KIND ``application``."""
    card = Element(f"{{{NS_VCARD4}}}vcard")
    _prop(card, "fn", "text", SERVICE_NAME)
    _prop(card, "kind", "text", "application")
    _prop(card, "impp", "uri", f"xmpp:{domain}")
    return card


def card_note(company: Company, lang: str | None = None) -> str:
    """Opening hours and time zone, as the vCards' NOTE (vCard4) and DESC
    (vcard-temp), in ``lang`` (the query's ``xml:lang``)."""
    lines = [_("Time zone: {timezone}", timezone=company.timezone)]
    if company.hours:
        lines.insert(0, _("Opening hours: {hours}", hours=company.hours))
    return "\n".join(translate(line, lang) for line in lines)


def tel_uri(phone: str) -> str | None:
    """RFC 3966 ``tel:`` URI of an international number (``+`` first); else None."""
    if not phone.startswith("+"):
        return None
    digits = "".join(ch if ch.isdigit() else "-" for ch in phone[1:])
    return "tel:+" + "-".join(part for part in digits.split("-") if part)


def _prop(card: Element, name: str, value_type: str, value: str) -> None:
    prop = SubElement(card, f"{{{NS_VCARD4}}}{name}")
    SubElement(prop, f"{{{NS_VCARD4}}}{value_type}").text = value


def _work(prop: Element, *more: str) -> None:
    params = SubElement(prop, f"{{{NS_VCARD4}}}parameters")
    types = SubElement(params, f"{{{NS_VCARD4}}}type")
    for value in ("work", *more):
        SubElement(types, f"{{{NS_VCARD4}}}text").text = value


# -- XEP-0128 -------------------------------------------------------------------------


def company_info(company: Company, now: dt.datetime, first_response_s: float | None) -> ResultForm:
    """The ``urn:orgchat:company:0`` form of a company's disco#info.

    Fields with no value (no category, city or hours published, open now,
    no measured response time) are left out.
    """
    is_open, opens = hours.open_now(company.hours, company.timezone, now)
    fields = [Field.hidden("FORM_TYPE", NS_COMPANY_INFO)]
    if company.category:
        fields.append(Field.text_single("category", _("Category"), default=company.category))
    if company.city:
        fields.append(Field.text_single("city", _("City"), default=company.city))
    fields.append(Field.text_single("timezone", _("Time zone"), default=company.timezone))
    if company.hours:
        fields.append(Field.text_single("hours", _("Opening hours"), default=company.hours))
    fields.append(Field.boolean("open-now", _("Open now"), default=is_open))
    if not is_open and opens is not None:
        fields.append(Field.text_single("next-opening", _("Opens at"), default=xep0082(opens)))
    if first_response_s is not None:
        fields.append(
            Field.text_single(
                "first-response",
                _("Median first response (seconds)"),
                default=str(round(first_response_s)),
            )
        )
    return ResultForm(fields=fields)


def xep0082(moment: dt.datetime) -> str:
    """XEP-0082 DateTime in UTC, whole seconds: ``2026-11-28T03:00:00Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
