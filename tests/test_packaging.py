"""Installing the product adds exactly one top-level import package, ``collector``, and carries the SQL
and the tracker it needs; a venv that already has PyPI's ``schema`` package keeps both importable."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from collector.testing import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    return next(out.glob("*.whl"))


def test_wheel_has_one_top_level_package_with_its_sql_and_tracker(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"collector"}
    migrations = {n.rsplit("/", 1)[-1] for n in names if n.startswith("collector/storage/schema/migrations/")}
    assert migrations == {p.name for p in (ROOT / "schema" / "migrations").glob("*.sql")}
    assert "collector/http/static/t.js" in names


def test_installs_beside_the_schema_package(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "schema", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    probe = ("import schema, importlib.util as u; assert hasattr(schema, 'Schema'), schema.__file__; "
             "print(u.find_spec('collector').origin)")
    out = subprocess.run([str(py), "-c", probe], check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.stdout.strip().startswith(str(venv))
