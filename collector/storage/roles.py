"""SQL for a ClickHouse server: the two roles of the SQL surface as the server's own access control.

``roles_sql`` is what ``collector schema --roles`` prints. On a server the collector's sandbox still
checks every query, and these grants hold even for a client that bypasses the collector:

- ``collector_analyst``: ``SELECT`` on the analyst views only, through a settings profile that is
  read-only and carries the analyst limits as constants (``CONST``: a query cannot change them).
- The views run as ``SQL SECURITY DEFINER`` with a definer that cannot log in (``HOST NONE``) and may
  read the anonymous plane only (``DEFINER_READS``: ``events``, the visit slices, the visit views over
  them and the goals), so the analyst needs no grant on any of them. The collector re-creates
  the views at start (``CREATE OR REPLACE VIEW``), which resets that: run these statements again after
  a start that changed the views.
- ``collector_admin``: ``SELECT`` on the product's database and what erasure needs
  (``ALTER DELETE`` on the tables it clears), read-only otherwise, with the admin limits.

Users are created only when a password hash is given (``sha256_hash``); otherwise grant the roles to
existing users: ``GRANT collector_analyst TO some_user``.
"""

from __future__ import annotations

import re

from collector.storage.sandbox import DEFAULT_LIMITS, Role

ANALYST_ROLE, ADMIN_ROLE = "collector_analyst", "collector_admin"
ANALYST_PROFILE, ADMIN_PROFILE = "collector_analyst_limits", "collector_admin_limits"
DEFINER = "collector_view_definer"
# what the analyst views read: the anonymous plane, its visit slices, the visit views over them, the goals
DEFINER_READS = ("events", "visit_slices", "visits", "visits_between", "goals")
# tables the erasure clears
ERASURE_TABLES = ("events", "member_events", "consent_ledger")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def _profile(name: str, role: Role) -> str:
    limits = DEFAULT_LIMITS[role]
    items = []
    for key, value in limits.settings().items():
        literal = str(value) if isinstance(value, int) else "'" + str(value) + "'"
        items.append(f"{key} = {literal} CONST")
    return f"CREATE SETTINGS PROFILE OR REPLACE {_ident(name)} SETTINGS {', '.join(items)}"


def roles_sql(database: str, analyst_views: list[str], *, analyst_password_sha256: str | None = None,
              admin_password_sha256: str | None = None) -> list[str]:
    """The statements, in order, that give a ClickHouse server the analyst and admin roles."""
    db = _ident(database)
    views = [_ident(v) for v in analyst_views]
    out = [
        _profile(ANALYST_PROFILE, Role.ANALYST),
        _profile(ADMIN_PROFILE, Role.ADMIN),
        f"CREATE ROLE IF NOT EXISTS {_ident(ANALYST_ROLE)} SETTINGS PROFILE {_ident(ANALYST_PROFILE)}",
        f"CREATE ROLE IF NOT EXISTS {_ident(ADMIN_ROLE)} SETTINGS PROFILE {_ident(ADMIN_PROFILE)}",
        f"REVOKE ALL ON *.* FROM {_ident(ANALYST_ROLE)}",
        f"REVOKE ALL ON *.* FROM {_ident(ADMIN_ROLE)}",
        # the views' definer: reads the anonymous plane, cannot log in
        f"CREATE USER IF NOT EXISTS {_ident(DEFINER)} IDENTIFIED WITH no_password HOST NONE",
        f"REVOKE ALL ON *.* FROM {_ident(DEFINER)}",
    ]
    out += [f"GRANT SELECT ON {db}.{_ident(t)} TO {_ident(DEFINER)}" for t in DEFINER_READS]
    for v in views:
        out.append(f"ALTER TABLE {db}.{v} MODIFY SQL SECURITY DEFINER DEFINER = {_ident(DEFINER)}")
        out.append(f"GRANT SELECT ON {db}.{v} TO {_ident(ANALYST_ROLE)}")
    out.append(f"GRANT SELECT ON {db}.* TO {_ident(ADMIN_ROLE)}")
    for table in ERASURE_TABLES:
        out.append(f"GRANT ALTER DELETE ON {db}.{_ident(table)} TO {_ident(ADMIN_ROLE)}")
    for user, role, digest in ((ANALYST_ROLE + "_user", ANALYST_ROLE, analyst_password_sha256),
                               (ADMIN_ROLE + "_user", ADMIN_ROLE, admin_password_sha256)):
        if digest is None:
            continue
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise ValueError("a password hash is 64 hex digits (SHA-256)")
        out.append(f"CREATE USER IF NOT EXISTS {_ident(user)} IDENTIFIED WITH sha256_hash BY '{digest.lower()}' "
                   f"DEFAULT ROLE {_ident(role)} SETTINGS PROFILE {_ident(role + '_limits')}")
        out.append(f"GRANT {_ident(role)} TO {_ident(user)}")
        out.append(f"SET DEFAULT ROLE {_ident(role)} TO {_ident(user)}")
    return out
