"""The README's promises: its commands exist and its configuration snippets load."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from syncmld.cli import build_parser
from syncmld.config import parse

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in README


def test_every_documented_subcommand_exists() -> None:
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    known = set(actions[0].choices or ())  # type: ignore[arg-type]
    documented = set(re.findall(r"`syncmld ([a-z-]+)", README))
    assert documented <= known, documented - known


def test_configuration_snippets_load(tmp_path: Path) -> None:
    (tmp_path / "office.password").write_text("secret\n", encoding="utf-8")
    merged: dict[str, Any] = {}
    secret = str(tmp_path / "office.password")
    for block in re.findall(r"```toml\n(.*?)```", README, re.S):
        text = block.replace("~/.config/syncmld/office.password", secret)
        for key, value in tomllib.loads(text).items():
            merged.setdefault(key, {}).update(value)
    config = parse(merged, base=tmp_path)
    assert set(config.stores) == {"contacts", "calendar"}
    assert config.http.auth == "md5"
    assert config.server("office").sync[0].remote == "card"
