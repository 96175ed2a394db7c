from __future__ import annotations

import shutil

import pytest

from collector.testing import ROOT

DEPLOY = ROOT / "deploy"


def need(exe: str, package: str) -> str:
    path = shutil.which(exe) or next((p for p in (f"/usr/sbin/{exe}", f"/usr/bin/{exe}") if shutil.which(p)), None)
    if not path:
        pytest.fail(f"{exe} is missing: run scripts/test-deps.sh (apt-get install {package})")
    return path
