"""`orgchat --version`: the installed distribution's version, from its metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from component import cli

ROOT = Path(__file__).parents[2]


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"orgchat {importlib.metadata.version('orgchat')}\n"


def test_version_needs_no_configuration_and_no_command() -> None:
    # What an operator types on a host with no configuration and no services.
    result = subprocess.run(
        [sys.executable, "-m", "component", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"orgchat {importlib.metadata.version('orgchat')}\n"


def test_version_of_a_checkout_that_was_never_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert cli.version() == "unknown (not installed)"
