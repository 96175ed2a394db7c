"""The README's settings table and the reference configuration name every setting there is."""

import tomllib
from dataclasses import fields
from pathlib import Path

from collector import settings as S

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text()
    reference = tomllib.loads((ROOT / "config" / "reference.toml").read_text())
    names = [f.name for f in fields(S.Settings) if f.name != "sites"]
    assert [n for n in names if f"`COLLECTOR_{n.upper()}`" not in readme] == []
    assert [n for n in names if n not in reference] == []
    assert set(reference) - set(names) == {"sites"}


def test_reference_configuration_loads():
    s = S.load({"COLLECTOR_CONFIG": str(ROOT / "config" / "reference.toml")})
    assert s.site("example.org").member_id_patterns == (r"\bMBR\d{6,}\b",)
    assert S.load({"COLLECTOR_CONFIG": str(ROOT / "config" / "demo.toml")}).site("localhost") is not None
