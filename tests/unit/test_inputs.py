"""Pure logic: addresses, opening hours, operator input, configuration."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_opening_hours() -> None:
    spec = hours.parse("Mo-Fr 09:00-13:00,14:00-18:00; Sa 10:00-14:00; Fr-Sa 20:00-02:00")
    assert spec.is_open(0, 9 * 60)
    assert not spec.is_open(0, 13 * 60 + 30)
    assert not spec.is_open(6, 12 * 60)  # Sunday closed
    assert spec.is_open(4, 23 * 60)  # Friday night
    assert spec.is_open(5, 60)  # ... until 02:00 on Saturday
    assert not spec.is_open(5, 12 * 60)  # Saturday's later rule replaced 10-14
    assert hours.parse("24/7").is_open(6, 0)
    assert hours.parse("Su off").week[6] == ()


@pytest.mark.parametrize(
    "bad", ["", "Mon 09:00-18:00", "Mo 9-18", "Mo 09:00", "Mo 25:00-26:00", "Mo"]
)
def test_bad_opening_hours(bad: str) -> None:
    with pytest.raises(hours.HoursError):
        hours.parse(bad)


def test_company_draft_validation() -> None:
    draft = company_draft(
        "pizza", " Pizza ", "a@b.example", "Asia/Novosibirsk", "Mo-Fr 09:00-18:00"
    )
    assert draft.name == "Pizza" and draft.timezone == "Asia/Novosibirsk"
    for args, message in [
        (("Pizza!", "x"), "invalid slug"),
        (("pizza", "  "), "name must not be empty"),
        (("pizza", "P", "not-an-email"), "invalid email"),
        (("pizza", "P", None, "Mars/Olympus"), "unknown time zone"),
        (("pizza", "P", None, "UTC", "whenever"), "invalid opening hours"),
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
