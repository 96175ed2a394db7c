"""Bearer credentials of the internal listener: configured, or generated once into the data directory.

A token file is created atomically (written to a temporary name, fsynced, then linked into place),
so a crash or a full disk can never leave an empty or partial token behind. Tokens shorter than
``MIN_TOKEN_CHARS`` are refused wherever they come from.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from collector.files import write_synced

MIN_TOKEN_CHARS = 24


class CredentialError(ValueError):
    """A configured or stored token cannot be used."""


def usable(token: str) -> bool:
    return len(token) >= MIN_TOKEN_CHARS and token.isprintable() and " " not in token


def load_or_create(path: Path, configured: str = "") -> str:
    """The configured token, else the one stored at ``path``, else a new one stored there (0600)."""
    if configured:
        if not usable(configured):
            raise CredentialError(f"the configured token for {path.name} is shorter than {MIN_TOKEN_CHARS} "
                                  "characters or contains spaces")
        return configured
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        if not usable(token):
            raise CredentialError(f"{path} holds an unusable token: delete it and a new one is generated")
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_synced(tmp, token.encode())
    try:
        path.unlink(missing_ok=True)  # an empty file left by an older version
        os.link(tmp, path)
    except FileExistsError:  # another process created it first: use theirs
        token = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return token


def read(path: Path) -> str:
    """A stored token for a client (the CLI); "" when there is none or it is unusable."""
    try:
        token = path.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return ""
    return token if usable(token) else ""
