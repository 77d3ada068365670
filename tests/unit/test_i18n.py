# ruff: noqa: RUF001  (Russian texts are intended)
"""The language mechanism (component/i18n.py) and the catalogues against the code."""

from __future__ import annotations

import datetime as dt
import gettext
import string
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from component import i18n
from component.errors import NotAllowed, condition_for
from component.i18n import _, language, n_, translate, translate_form, writer
from extensions.forms import Column, Field, Form, Option, ResultForm, Table
from extensions.request.offers import Offer, decline_text, offer_from_form, offer_text
from extensions.request.payloads import closed_text, fanout_text
from extensions.request.stanza import FORM_OFFER
from extensions.submitted_form import SubmittedForm
from extensions.xml import PayloadError

ROOT = Path(__file__).resolve().parents[2]


# -- choosing the language ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("RU-ru", "ru"),
        ("ru_RU", "ru"),
        ("en", "en"),
        ("en-GB", "en"),
        ("de", "en"),
        ("", "en"),
        (None, "en"),
        ("rue", "en"),  # Rusyn is not Russian
    ],
)
def test_language_from_xml_lang(tag: str | None, lang: str) -> None:
    assert language(tag) == lang


def test_languages_are_english_and_every_catalogue() -> None:
    assert sorted(i18n.LANGUAGES) == ["en", "ru"]


# -- texts ------------------------------------------------------------------------------


def test_a_text_is_its_english_string() -> None:
    text = _("No such company")
    assert text == "No such company"
    assert isinstance(text, str)
    assert translate(text, None) == "No such company"
    assert translate(text, "de") == "No such company"
    assert translate(text, "ru") == "Нет такой компании"


def test_placeholders_are_filled_in_the_translation() -> None:
    text = _("Confirmed: notifications may now go to {email}.", email="anna@example.org")
    assert text == "Confirmed: notifications may now go to anna@example.org."
    assert (
        translate(text, "ru-RU")
        == "Подтверждено: уведомления теперь могут приходить на anna@example.org."
    )


def test_a_text_inside_a_text_takes_the_same_language() -> None:
    status = _("Not sent: {reason}", reason=_("closed now"))
    assert status == "Not sent: closed now"
    assert translate(status, "ru") == "Не отправлено: сейчас закрыта"


def test_plain_strings_and_other_values_pass_through() -> None:
    assert translate("Pizza Napoli", "ru") == "Pizza Napoli"
    assert translate(3, "ru") == "3"


@pytest.mark.parametrize(
    ("count", "english", "russian"),
    [
        (1, "Sent to 1 company", "Отправлено 1 компании"),
        (2, "Sent to 2 companies", "Отправлено 2 компаниям"),
        (5, "Sent to 5 companies", "Отправлено 5 компаниям"),
        (11, "Sent to 11 companies", "Отправлено 11 компаниям"),
        (21, "Sent to 21 companies", "Отправлено 21 компании"),
    ],
)
def test_russian_plurals(count: int, english: str, russian: str) -> None:
    text = n_(
        "Sent to {count} company; the answers arrive as chats.",
        "Sent to {count} companies; the answers arrive as chats.",
        count,
    )
    assert text == f"{english}; the answers arrive as chats."
    assert translate(text, "ru").startswith(russian)


@pytest.mark.parametrize(
    ("count", "form"),
    [(1, "сообщение"), (3, "сообщения"), (5, "сообщений"), (12, "сообщений"), (22, "сообщения")],
)
def test_russian_has_three_plural_forms(count: int, form: str) -> None:
    text = n_(
        "{company} sent you {count} message",
        "{company} sent you {count} messages",
        count,
        company="Pizza Napoli",
    )
    assert translate(text, "ru") == f"Компания «Pizza Napoli» отправила вам {count} {form}"


class _Broken(gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return "{nonexistent} сломано"


def test_a_broken_translation_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_catalogue", lambda lang: _Broken())
    assert translate(_("Hello {name},", name="Anna"), "ru") == "Hello Anna,"


def test_an_untranslated_text_is_english() -> None:
    assert translate(_("A text no catalogue has"), "ru") == "A text no catalogue has"


def test_forms_are_translated_labels_and_all() -> None:
    form = Form(
        title=_("Confirm email address"),
        instructions=_("Unclaimed first, then the most recent."),
        fields=[
            Field.list_single("x", _("Status"), [Option("a", _("Any city")), Option("b", "Bob")]),
            Field.text_single("y", _("Time zone"), desc=_("e.g. Europe/Berlin"), default="UTC"),
        ],
    )
    ru = translate_form(form, "ru").element()
    texts = [el.text for el in ru.iter() if el.text] + [
        el.get("label") for el in ru.iter() if el.get("label")
    ]
    assert "Подтвердить адрес почты" in texts
    assert "Статус" in texts
    assert "Любой город" in texts
    assert "Bob" in texts
    assert "UTC" in texts  # values are not translated
    assert translate_form(form, "en") == form

    plain = {"s": "other", "t": ("a", "b")}
    result = ResultForm(
        title="Pizza Napoli",
        table=Table(
            [Column("s", _("Status")), Column("t", "T")],
            [{"s": _("closed")}, plain, {"s": "x", "t": ("a", _("closed"))}],
        ),
    )
    translated = translate_form(result, "ru")
    assert translated.summary() == "Статус: закрыт\nСтатус: other; T: a, b\nСтатус: x; T: a, закрыт"
    assert translated.table is not None and translated.table.rows[1] is plain  # not copied


def test_form_errors_name_the_field_in_the_language() -> None:
    form = SubmittedForm({"size": ["XXL"]})
    with pytest.raises(PayloadError) as labelled:
        form.choice("size", ["S", "M"], label=_("Subject"))
    text = condition_for(labelled.value)[2]
    assert text == "'Subject': 'XXL' is not one of the choices"
    assert translate(text, "ru") == "«Тема»: 'XXL' нет среди вариантов"
    with pytest.raises(PayloadError) as unlabelled:
        SubmittedForm().text("size")
    assert translate(condition_for(unlabelled.value)[2], "ru") == "Поле «size» обязательно"


def test_what_extensions_write_is_translated_by_a_writer() -> None:
    offer = Offer(Decimal("320"), "EUR", "in-stock", dt.date(2026, 12, 5))
    assert offer_text(offer) == "Offer: 320.00 EUR, in stock, valid until 2026-12-05"
    assert offer_text(offer, writer("en")) == offer_text(offer)
    assert offer_text(offer, writer("ru")) == (
        "Предложение: 320.00 EUR, в наличии, действует до 2026-12-05"
    )
    assert decline_text(None, writer("ru")) == "Отказ."
    assert closed_text(False, False, writer("ru-RU")) == "/me закрывает этот запрос."
    form = Form([Field.boolean("fitted", "Fitted", default=True)])
    assert fanout_text("Шины", "Сколько?", form, writer("ru")) == (
        "Запрос: Шины\n\nСколько?\n\nFitted: да\n\n(Вопрос задан нескольким компаниям. "
        "Ответьте здесь; ваш ответ увидит только этот клиент.)"
    )


def test_an_offer_s_errors_in_the_language() -> None:
    form = Form(
        [Field("price", ("3.999",)), Field("currency", ("EUR",)), Field("availability", ("x",))],
        form_type=FORM_OFFER,
    )
    with pytest.raises(PayloadError) as bad:
        offer_from_form(form)
    text = condition_for(bad.value)[2]
    assert text == str(bad.value) == "The offer's price has more than 2 decimals"
    assert translate(text, "ru") == "В цене предложения больше двух знаков после точки"
    with pytest.raises(PayloadError) as unknown:
        offer_from_form(Form([Field("colour", ("red",))], form_type=FORM_OFFER))
    # Not in the catalogue (a mistake of desk software, not of a person): English.
    assert translate(condition_for(unknown.value)[2], "ru") == str(unknown.value)


def test_error_texts_keep_their_translation() -> None:
    refused = condition_for(NotAllowed(_("Wrong or outdated confirmation code")))
    assert translate(refused[2], "ru") == "Неверный или устаревший код подтверждения"
    malformed = condition_for(PayloadError(_("Time zone: {error}", error="unknown zone")))
    assert malformed[2] == "Time zone: unknown zone"
    assert translate(malformed[2], "ru") == "Часовой пояс: unknown zone"


# -- the catalogues against the code ------------------------------------------------------


def _code_texts() -> Iterator[tuple[str, int, str | tuple[str, str]]]:
    for source in i18n.SOURCES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT / source), method_map=[("**.py", "python")], keywords=i18n.KEYWORDS
        ):
            yield f"{source}/{filename}", lineno, message


def _catalogue(lang: str) -> Catalog:
    with i18n.catalogue_path(lang).open("rb") as po:
        return read_po(po, locale=lang)


def _placeholders(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def _strings(message: Message) -> list[str]:
    value = message.string
    return list(value) if isinstance(value, tuple | list) else [value]


def test_the_code_marks_texts() -> None:
    assert sum(1 for _ in _code_texts()) > 100


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES - {i18n.DEFAULT}))
def test_every_text_of_the_code_is_translated(lang: str) -> None:
    catalogue = _catalogue(lang)
    missing = []
    for filename, lineno, message in _code_texts():
        msgid = message[0] if isinstance(message, tuple) else message
        entry = catalogue.get(msgid)
        if entry is None or entry.fuzzy or not all(_strings(entry)):
            missing.append(f"{filename}:{lineno}: {msgid!r}")
            continue
        if isinstance(message, tuple) != entry.pluralizable:
            missing.append(f"{filename}:{lineno}: {msgid!r} (plural or not?)")
    assert not missing, f"untranslated in {lang} (run `make messages`, then translate):\n" + (
        "\n".join(missing)
    )


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES - {i18n.DEFAULT}))
def test_translations_keep_the_placeholders(lang: str) -> None:
    catalogue = _catalogue(lang)
    wrong = []
    for entry in catalogue:
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple | list) else (entry.id,)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for text in _strings(entry):
            found = _placeholders(text)
            # A plural form may leave {count} out ("одну компанию").
            if found - wanted or (wanted - {"count"}) - found:
                wrong.append(f"{ids[0]!r}: {text!r}")
    assert not wrong, "\n".join(wrong)
    assert catalogue.num_plurals == (3 if lang == "ru" else catalogue.num_plurals)


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES - {i18n.DEFAULT}))
def test_the_catalogue_has_no_text_the_code_dropped(lang: str) -> None:
    used = {m[0] if isinstance(m, tuple) else m for _f, _l, m in _code_texts()}
    unused = [
        e.id for e in _catalogue(lang) if e.id and (e.id[0] if e.pluralizable else e.id) not in used
    ]
    assert not unused, f"not used by the code (run `make messages`): {unused}"
