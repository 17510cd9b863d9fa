"""End-to-end helpers: accounts made by the real CLI."""

from __future__ import annotations

import re

from tests.support import run_cli


def init_account(database_url: str, name: str) -> str:
    out = run_cli("init", "--database-url", database_url, "--account", name)
    match = re.search(r"API key \(shown only now, keep it safe\): (mb_\S+)", out)
    assert match, out
    return match.group(1)
