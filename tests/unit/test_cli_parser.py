"""Usage errors of the `orgchat` command: one line, always `orgchat: error:`, exit 2."""

from __future__ import annotations

import os

import pytest

from component.cli import EXIT_USAGE, build_parser, main


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: command"),
        (["company", "add", "acme"], "company add: the following arguments are required: --name"),
        (["company", "frob"], "company: argument action: invalid choice: 'frob'"),
        (["agent", "add", "acme"], "agent add: the following arguments are required: jid"),
        (["import"], "import: the following arguments are required: file"),
    ],
)
def test_usage_errors_are_one_orgchat_error_line(
    argv: list[str], mentions: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("orgchat: error: ")
    assert mentions in line


@pytest.mark.parametrize("argv", [["company", "list"], ["migrate"]])
def test_malformed_database_url_is_one_configuration_error_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # asyncpg rejects the DSN before any network I/O: no server is involved.
    for name in [n for n in os.environ if n.startswith("ORGCHAT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ORGCHAT_DEV_MODE", "1")
    monkeypatch.setenv("ORGCHAT_DATABASE_URL", "not-a-dsn")
    assert main(argv) == EXIT_USAGE
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("orgchat: error: configuration: database.url: invalid DSN")
