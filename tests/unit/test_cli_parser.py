"""Usage errors of the `orgchat` command: one line, always `orgchat: error:`, exit 2."""

from __future__ import annotations

import pytest

from component.cli import EXIT_USAGE, build_parser


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
