"""The user docs keep up with the code: every setting and command is documented."""

from __future__ import annotations

from click import Group

from mailbeacon.cli import main
from mailbeacon.config import Settings
from mailbeacon.store.accounts import SETTING_FIELDS
from tests.support import REPO


def test_every_server_setting_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in text, name
        assert f"MAILBEACON_{name.upper()}" in text, name


def test_every_account_setting_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    for name in SETTING_FIELDS:
        assert f"`{name}`" in text, name


def test_every_command_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    for name, command in main.commands.items():
        if isinstance(command, Group):
            for sub in command.commands:
                assert f"mailbeacon {name} {sub}" in text, f"{name} {sub}"
        else:
            assert f"mailbeacon {name}" in text, name


def test_readme_quick_start_has_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert "./run.sh" in readme
    assert "./test.sh" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "./test.sh" in ci
