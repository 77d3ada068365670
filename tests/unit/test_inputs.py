"""Pure logic: addresses, opening hours, operator input, configuration."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from component import config as config_mod
from component import hours
from component.addressing import conversation_jid, normalize_bare_jid, split_local
from component.cli_common import InputError
from component.features.directory.input import BadRows, company_draft, read_import
from storage.models import ImportedCompany, Role


def load_import(path: Path, agents_host: str) -> list[ImportedCompany]:
    """Every company of an import file, or InputError listing its bad rows."""
    return list(BadRows(skip=False).good(read_import(path, agents_host)))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("pizza-napoli", ("pizza-napoli", None)),
        ("pizza-napoli+k3x7f2q7mz", ("pizza-napoli", "k3x7f2q7mz")),
        ("a", ("a", None)),
        ("Pizza", None),
        ("-pizza", None),
        ("pizza-", None),
        ("pizza+short", None),
        ("pizza+k3x9f2q7m1", None),  # '1' is not in the token alphabet
        ("pizza+k3x7f2q7mz+x", None),
        ("", None),
    ],
)
def test_split_local(local: str, expected: tuple[str, str | None] | None) -> None:
    assert split_local(local) == expected


def test_conversation_jid_round_trip() -> None:
    jid = conversation_jid("pizza-napoli", "k3x7f2q7mz", "biz.localhost")
    assert jid == "pizza-napoli+k3x7f2q7mz@biz.localhost"
    assert split_local(jid.split("@")[0]) == ("pizza-napoli", "k3x7f2q7mz")


@pytest.mark.parametrize(
    "bad", ["mario", "mario@localhost/desk", "@localhost", "ma rio@localhost", "a@b@c"]
)
def test_invalid_agent_jids(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid JID"):
        normalize_bare_jid(bad)


def test_jid_normalisation() -> None:
    assert normalize_bare_jid("Mario@LocalHost") == "mario@localhost"


NSK = ZoneInfo("Asia/Novosibirsk")  # UTC+7 all year
MSK = ZoneInfo("Europe/Moscow")  # UTC+3 all year
BERLIN = ZoneInfo("Europe/Berlin")


def at(zone: ZoneInfo, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A local time in 2025 (Monday 3 March, Saturday 8 March, ...)."""
    return dt.datetime(2025, month, day, hour, minute, tzinfo=zone)


OLD_SYNTAX = "Mo-Fr 09:00-13:00,14:00-18:00; Sa 10:00-14:00; Fr-Sa 20:00-02:00"


# Specifications the former hand-written parser read, with its answers.
@pytest.mark.parametrize(
    ("spec", "now", "expected"),
    [
        (OLD_SYNTAX, at(NSK, 3, 3, 9), (True, None)),  # Monday
        (OLD_SYNTAX, at(NSK, 3, 3, 8, 59), (False, at(NSK, 3, 3, 9))),
        (OLD_SYNTAX, at(NSK, 3, 3, 13, 30), (False, at(NSK, 3, 3, 14))),  # lunch
        (OLD_SYNTAX, at(NSK, 3, 3, 18), (False, at(NSK, 3, 4, 9))),
        (OLD_SYNTAX, at(NSK, 3, 7, 12), (False, at(NSK, 3, 7, 20))),  # Friday: the last rule
        (OLD_SYNTAX, at(NSK, 3, 7, 23), (True, None)),
        (OLD_SYNTAX, at(NSK, 3, 8, 1, 59), (True, None)),  # ... until 02:00 on Saturday
        (OLD_SYNTAX, at(NSK, 3, 8, 2), (False, at(NSK, 3, 8, 20))),
        (OLD_SYNTAX, at(NSK, 3, 8, 12), (False, at(NSK, 3, 8, 20))),  # Sa 10-14 replaced
        (OLD_SYNTAX, at(NSK, 3, 9, 1), (True, None)),  # Saturday night
        (OLD_SYNTAX, at(NSK, 3, 9, 12), (False, at(NSK, 3, 10, 9))),  # over the weekend
        ("Fr-Sa 20:00-02:00", at(MSK, 3, 7, 19, 59), (False, at(MSK, 3, 7, 20))),
        ("Fr-Sa 20:00-02:00", at(MSK, 3, 8, 1), (True, None)),
        ("Fr-Sa 20:00-02:00", at(MSK, 3, 9, 1, 59), (True, None)),
        ("Fr-Sa 20:00-02:00", at(MSK, 3, 9, 2), (False, at(MSK, 3, 14, 20))),
        ("Fr-Sa 20:00-02:00", at(MSK, 3, 10, 12), (False, at(MSK, 3, 14, 20))),
        ("Mo-Fr 09:00-18:00; Sa 10:00-14:00", at(MSK, 3, 7, 18), (False, at(MSK, 3, 8, 10))),
        ("Mo-Fr 09:00-18:00; Sa 10:00-14:00", at(MSK, 3, 8, 14), (False, at(MSK, 3, 10, 9))),
        ("Mo-Fr 09:00-18:00; Sa 10:00-14:00", at(MSK, 3, 9, 23, 59), (False, at(MSK, 3, 10, 9))),
        ("Mo,We,Fr 08:00-12:00,13:00-17:00; Su off", at(MSK, 3, 4, 10), (False, at(MSK, 3, 5, 8))),
        ("Mo,We,Fr 08:00-12:00, 13:00-17:00", at(MSK, 3, 5, 12, 30), (False, at(MSK, 3, 5, 13))),
        ("Sa-Mo 10:00-12:00", at(NSK, 3, 9, 11), (True, None)),
        ("Sa-Mo 10:00-12:00", at(NSK, 3, 4, 11), (False, at(NSK, 3, 8, 10))),
        ("Mo 22:00-24:00", at(NSK, 3, 3, 23, 59), (True, None)),
        ("Mo 22:00-24:00", at(NSK, 3, 4, 0), (False, at(NSK, 3, 10, 22))),
        ("24/7", at(NSK, 3, 9, 3), (True, None)),
        ("Su off", at(NSK, 3, 9, 12), (False, None)),  # never opens
        ("Mo-Fr  09:00-18:00;", at(NSK, 3, 3, 12), (True, None)),  # stored before the full syntax
    ],
)
def test_former_hours_answer_as_before(
    spec: str, now: dt.datetime, expected: tuple[bool, dt.datetime | None]
) -> None:
    assert answer(spec, now) == expected


def answer(spec: str, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """``open_now`` in the time zone of ``now``, asked in UTC."""
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    is_open, opens = hours.open_now(spec, zone.key, now.astimezone(dt.UTC))
    assert opens is None or opens.tzinfo == zone  # in the company's time zone
    return is_open, opens


WEEKDAYS_LUNCH = 'Mo-Fr 08:00-12:00,13:00-17:30; Sa 09:00-13:00 "by appointment"'


# Real directory data the former parser refused (2025: 1 March and 25 December are
# a Saturday and a Thursday, 29 December starts ISO week 1 of 2026).
@pytest.mark.parametrize(
    ("spec", "now", "expected"),
    [
        ("PH off", at(NSK, 12, 25, 12), (False, None)),  # nothing else: never open
        # No country on record: public holidays never match.
        ("Mo-Fr 09:00-18:00; PH off", at(MSK, 1, 1, 12), (True, None)),
        ("Mo-Fr 09:00-18:00; PH off", at(MSK, 1, 1, 19), (False, at(MSK, 1, 2, 9))),
        ("Dec 25 off", at(NSK, 12, 25, 12), (False, None)),  # nothing opens, either day
        ("Dec 25 off", at(NSK, 12, 26, 12), (False, None)),
        ("Mo-Su 09:00-18:00; Dec 25 off", at(NSK, 12, 24, 18), (False, at(NSK, 12, 26, 9))),
        ("Mo-Su 09:00-18:00; Dec 25 off", at(NSK, 12, 25, 12), (False, at(NSK, 12, 26, 9))),
        ("Mo-Su 09:00-18:00; Dec 25 off", at(NSK, 12, 26, 12), (True, None)),
        ("Sa[1] 10:00-14:00", at(NSK, 3, 1, 12), (True, None)),
        ("Sa[1] 10:00-14:00", at(NSK, 3, 8, 12), (False, at(NSK, 4, 5, 10))),
        ("Mo-Fr 10:00+", at(MSK, 3, 5, 9), (False, at(MSK, 3, 5, 10))),
        ("Mo-Fr 10:00+", at(MSK, 3, 5, 23, 30), (True, None)),  # open end: open
        ("Mo-Fr 10:00+", at(MSK, 3, 8, 12), (False, at(MSK, 3, 10, 10))),
        (WEEKDAYS_LUNCH, at(MSK, 3, 5, 12, 30), (False, at(MSK, 3, 5, 13))),
        (WEEKDAYS_LUNCH, at(MSK, 3, 5, 17, 30), (False, at(MSK, 3, 6, 8))),
        (WEEKDAYS_LUNCH, at(MSK, 3, 8, 10), (True, None)),  # a comment: still open
        (WEEKDAYS_LUNCH, at(MSK, 3, 8, 13), (False, at(MSK, 3, 10, 8))),
        ("week 01-26 Mo-Fr 09:00-18:00", at(NSK, 7, 1, 12), (False, at(NSK, 12, 29, 9))),
        ("Mo-Fr 09:00-18:00 unknown", at(MSK, 3, 5, 12), (True, None)),  # unknown: open
        ("Mo-Fr 09:00-18:00 unknown", at(MSK, 3, 5, 19), (False, at(MSK, 3, 6, 9))),
        ('"by appointment"', at(MSK, 3, 9, 3), (True, None)),
        ("Mo", at(NSK, 3, 3, 0), (True, None)),  # a day alone: all day
        # The last rule naming Sunday decides Sunday, after midnight included;
        # "," adds to a day instead.
        ("Mo-Sa 18:00-02:00; Su 12:00-16:00", at(NSK, 3, 9, 1), (False, at(NSK, 3, 9, 12))),
        ("Mo-Su 10:00-14:00; Sa 20:00-02:00", at(NSK, 3, 9, 1), (False, at(NSK, 3, 9, 10))),
        ("Mo-Sa 18:00-02:00, Su 12:00-16:00", at(NSK, 3, 9, 1), (True, None)),
    ],
)
def test_osm_hours(spec: str, now: dt.datetime, expected: tuple[bool, dt.datetime | None]) -> None:
    assert answer(spec, now) == expected


def test_next_opening_across_a_change_to_summer_time() -> None:
    is_open, opens = answer("Mo-Fr 09:00-18:00", at(BERLIN, 3, 29, 12))  # summer time from 30 March
    assert not is_open and opens == at(BERLIN, 3, 31, 9)
    assert opens.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("spec", "timezone"),
    [(None, "UTC"), ("", "UTC"), ("whenever", "UTC"), ("Mo 09:00-10:00", "Mars/Olympus")],
)
def test_unknown_or_unreadable_hours_count_as_open(spec: str | None, timezone: str) -> None:
    assert hours.open_now(spec, timezone, at(NSK, 3, 4, 12)) == (True, None)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "empty opening hours"),
        (" ; ", "empty opening hours"),
        ("Mon 09:00-18:00", "unexpected 'n 09:00-18:00' at character 3"),
        ("Mo 9-18", "unexpected '9-18' at character 4"),
        ("Mo 09:00", "'Mo 09:00' is incomplete"),
        ("Mo 25:00-26:00", "unexpected '25:00-26:00' at character 4"),
        ("whenever", "unexpected 'whenever' at character 1"),
        ("Mo-Fr 09:00-18:00 Sa 10:00-14:00", "unexpected 'Sa 10:00-14:00' at character 19"),
        ("Mo-Fr 09:00-18:00 by appointment only", "unexpected 'by appointment only' at"),
        ("Mo-Fr 09:00-18:00 or by appointment only", "unexpected 'or by appointment on...' at"),
    ],
)
def test_bad_opening_hours(bad: str, message: str) -> None:
    with pytest.raises(hours.HoursError) as caught:
        hours.parse(bad)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text and "_" not in text  # one line, none of the library's grammar
    if text != "empty opening hours":
        assert text.endswith("(write e.g. 'Mo-Fr 09:00-18:00; Sa 10:00-14:00; PH off')")


def test_each_specification_is_parsed_once() -> None:
    assert hours.parse("Mo-Fr 09:00-18:00; PH off") is hours.parse("Mo-Fr 09:00-18:00; PH off")


def test_company_draft_validation() -> None:
    draft = company_draft(
        "pizza", " Pizza ", "a@b.example", "Asia/Novosibirsk", "Mo-Fr 09:00-18:00"
    )
    assert draft.name == "Pizza" and draft.timezone == "Asia/Novosibirsk"
    osm = 'Mo-Fr 08:00-12:00,13:00-17:30; Sa[1] 09:00-13:00 "by appointment"; PH off'
    assert company_draft("pizza", "P", hours_spec=osm).hours == osm
    for args, message in [
        (("Pizza!", "x"), "invalid slug"),
        (("pizza", "  "), "name must not be empty"),
        (("pizza", "P", "not-an-email"), "invalid email"),
        (("pizza", "P", None, "Mars/Olympus"), "unknown time zone"),
        (
            ("pizza", "P", None, "UTC", "Mo-Fr 9-18"),
            r"invalid opening hours 'Mo-Fr 9-18': unexpected '9-18' at character 7 \(write",
        ),
    ]:
        with pytest.raises(InputError, match=message):
            company_draft(*args)  # type: ignore[arg-type]


def test_import_json_and_csv(tmp_path: Path) -> None:
    data = [
        {
            "slug": "pizza",
            "name": "Pizza",
            "agents": ["Mario@localhost", {"jid": "boss@localhost", "role": "admin"}],
        },
        {"slug": "bikes", "name": "Bikes", "timezone": "Europe/Berlin"},
    ]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    items = load_import(path, "localhost")
    assert [i.company.slug for i in items] == ["pizza", "bikes"]
    assert items[0].agents == (("mario@localhost", Role.AGENT), ("boss@localhost", Role.ADMIN))
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(
        "slug,name,city,agents\npizza,Pizza,Rome,mario@localhost boss@localhost:admin\n"
    )
    [item] = load_import(csv_path, "localhost")
    assert item.company.city == "Rome" and item.agents[1] == ("boss@localhost", Role.ADMIN)
    assert item.company.accepts_requests is True


def test_import_json_accepts_requests(tmp_path: Path) -> None:
    data = [
        {"slug": "a", "name": "A", "accepts_requests": False},
        {"slug": "b", "name": "B", "accepts_requests": True},
        {"slug": "c", "name": "C", "accepts_requests": None},
        {"slug": "d", "name": "D"},
    ]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    assert [i.company.accepts_requests for i in load_import(path, "localhost")] == [
        False,
        True,
        True,
        True,
    ]
    assert company_draft("a", "A").accepts_requests is True
    assert company_draft("a", "A", accepts_requests=False).accepts_requests is False


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('[{"slug": "Bad Slug", "name": "x"}]', ".json", "company #1: slug: invalid slug"),
        ("{not json", ".json", "invalid JSON"),
        ('[{"slug": "a", "name": "x", "colour": "red"}]', ".json", "unknown field"),
        (
            '[{"slug": "a", "name": "x", "accepts_requests": "no"}]',
            ".json",
            "company #1: accepts_requests: must be true or false",
        ),
        ('[{"slug": "a", "name": "x", "accepts_requests": 0}]', ".json", "true or false"),
        ("slug,name,accepts_requests\na,A,no\n", ".csv", "unknown column"),
        ('[{"slug": "a", "name": "x"}, {"slug": "a", "name": "y"}]', ".json", "duplicate slug"),
        ("slug,name,agents\na,A,notajid\n", ".csv", r"c\.csv:2: agents: invalid JID"),
        ("slug,name,agents\na,A,x@y:boss\n", ".csv", "role must be"),
        ("name\nA\n", ".csv", "header"),
        ("slug,name\n", ".txt", "unknown file type"),
    ],
)
def test_import_errors_are_one_line(
    tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_import(path, "localhost")
    assert "\n" not in str(info.value)


def test_config_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "orgchat.toml"
    path.write_text('dev_mode = true\n[component]\ndomain = "biz.example.org"\nport = 6000\n')
    cfg = config_mod.load(
        path, env={"ORGCHAT_COMPONENT_PORT": "7000", "ORGCHAT_LIMITS_MAX_BODY_CHARS": "50"}
    )
    assert cfg.component.domain == "biz.example.org"
    assert cfg.component.port == 7000  # the environment wins
    assert cfg.limits.max_body_chars == 50
    assert cfg.dev_mode is True


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[component]\nport = "x"\n', {}, "expected an integer"),
        ("[componnet]\n", {}, "unknown setting"),
        ("", {"ORGCHAT_DEV_MODE": "maybe"}, "expected a boolean"),
        ('[log]\nformat = "xml"\n', {}, "log.format"),
        ('[component]\nevent_loop = "trio"\n', {}, "component.event_loop"),
        ("[database]\npool_min = 1\npool_max = 1\n", {}, "keeps one connection"),
        ("[component\n", {}, "orgchat.toml"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "orgchat.toml"
    path.write_text(text)
    with pytest.raises(config_mod.ConfigError, match=message):
        config_mod.load(path, env=env)


def test_example_secrets_refused_outside_dev_mode() -> None:
    with pytest.raises(config_mod.ConfigError, match=r"component\.secret"):
        config_mod.load(None, env={}).check_secrets()
    env = {
        "ORGCHAT_COMPONENT_SECRET": "s3cret-from-vault",
        "ORGCHAT_DATABASE_URL": "postgresql://orgchat:real@db/orgchat",
    }
    with pytest.raises(config_mod.ConfigError, match=r"inbound\.secret"):
        config_mod.load(None, env=env).check_secrets()
    env["ORGCHAT_INBOUND_SECRET"] = "another-secret-from-vault"
    config_mod.load(None, env=env).check_secrets()
    config_mod.load(None, env={"ORGCHAT_DEV_MODE": "1"}).check_secrets()


def test_docs_config_md_is_generated_from_the_declaration() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert docs.read_text() == config_mod.render_markdown(), (
        "run: orgchat config docs > docs/config.md"
    )
