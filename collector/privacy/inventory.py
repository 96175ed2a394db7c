"""The data inventory: every stored table and column, what it means, how fine it is, how long it is
kept and whether it can identify a person. Generated from the live schema, so a column without a
description here shows up as UNDOCUMENTED instead of silently passing review.
"""

from __future__ import annotations

from collector.storage.migrate import retention_months

# column -> (meaning, granularity, identifies a person?)
# A column is "no" only with its reason: "(scrubbed)" when every value went through the PII detectors,
# "(closed set)" when values come from a fixed list or a shipped database, "(server-set)" when the
# collector itself makes the value, "(aggregate)" for counts in the analyst views.
SERVER, CLOSED, SCRUBBED, AGGREGATE = "no (server-set)", "no (closed set)", "no (scrubbed)", "no (aggregate)"
COLUMNS: dict[str, tuple[str, str, str]] = {
    "event_id": ("random id of the event, for exactly-once loading", "per event", SERVER),
    "site": ("the site's domain, one of the configured sites", "site", CLOSED),
    "ts": ("when the event happened (server clock; client clock if within the allowed skew)", "millisecond",
           SERVER),
    "ts_clamped": ("1 when the client's timestamp was too far off and the server time was used", "flag", SERVER),
    "name": ("event name: pageview, engagement, Outbound Link: Click, File Download, or custom, scrubbed",
             "event", SCRUBBED),
    "visitor_id": ("keyed pseudonym of a random client id (or of IP + browser), key rotated daily and destroyed "
                   "within 48 h; empty under GPC/DNT", "one visitor, one day", "pseudonymous, unlinkable after key "
                   "destruction"),
    "key_id": ("which visitor key made the pseudonym", "day", SERVER),
    "network_id": ("keyed pseudonym of the client's network (IPv4 /24, IPv6 /48), same key and lifetime as "
                   "visitor_id; counts the small-group threshold on identities the server derives",
                   "one network, one day", "pseudonymous, unlinkable after key destruction"),
    "privacy": ("standard, or gpc when Sec-GPC/DNT was sent or the tracker saw Global Privacy Control",
                "flag", CLOSED),
    "host": ("page host: the site's domain; labels of other hosts and sub-domains that are not plainly names "
             "are *, address literals [ip]", "host", SCRUBBED),
    "path": ("page path with id-like segments replaced (:id, :uuid, :email, :token) and PII detectors applied",
             "page", SCRUBBED),
    "query": ("allow-listed query parameters only (utm_*, ref, source, site-search), scrubbed", "page", SCRUBBED),
    "title": ("page title, scrubbed", "page", SCRUBBED),
    "referrer_host": ("referring site's host name only (never its path), labels checked like the page host",
                      "host", SCRUBBED),
    "referrer_source": ("named source (Google, Facebook, …), else the ref/source parameter or the referring "
                        "host, scrubbed", "source", SCRUBBED),
    "utm_source": ("campaign source, scrubbed", "campaign", SCRUBBED),
    "utm_medium": ("campaign medium, scrubbed", "campaign", SCRUBBED),
    "utm_campaign": ("campaign name, scrubbed", "campaign", SCRUBBED),
    "utm_term": ("campaign term, scrubbed", "campaign", SCRUBBED),
    "utm_content": ("campaign content, scrubbed", "campaign", SCRUBBED),
    "search_term": ("site-search term, lower-cased and scrubbed", "search", SCRUBBED),
    "link_url": ("clicked outbound or download link: scheme, checked host, non-default port and scrubbed path",
                 "link", SCRUBBED),
    "click_text": ("text of a tagged clicked element, scrubbed", "element", SCRUBBED),
    "engagement_ms": ("foreground time on the page", "millisecond", "no (number)"),
    "props": ("custom event properties, keys and values scrubbed (URL and path values as links and paths)",
              "event", SCRUBBED),
    "browser": ("browser, app web view or HTTP client family from a closed list, else Other (raw User-Agent is "
                "never stored)", "family", CLOSED),
    "browser_version": ("browser major version (digits only)", "major version", "no (number)"),
    "os": ("operating system family from a closed list, else Other", "family", CLOSED),
    "os_version": ("operating system major version (digits only)", "major version", "no (number)"),
    "device": ("device class: desktop, mobile, tablet", "class", CLOSED),
    "country": ("country from IP (raw IP never stored), or the ISO code an app sent", "country", CLOSED),
    "region": ("state or region from IP or app-sent ISO code, when precision allows", "region", CLOSED),
    "city": ("city from IP, only when COLLECTOR_GEO_PRECISION=city", "city", CLOSED),
    "asn": ("autonomous system number of the network (ISP or mobile carrier)", "network", CLOSED),
    "isp": ("organisation of the network (ISP or mobile carrier), from the ASN database", "network", CLOSED),
    "ip_prefix": ("truncated network prefix (IPv4 /16 or /24, IPv6 /48); empty unless enabled", "network",
                  "no (server-set, truncated)"),
    "platform": ("web, or the app platform (ios, android, …) from a closed list, else other", "platform", CLOSED),
    "app_version": ("numeric app version sent by a mobile app (major.minor.patch.build), scrubbed", "version",
                    SCRUBBED),
    "device_model": ("device model identifier sent by a mobile app, kept only in a model's shape, scrubbed",
                     "model", SCRUBBED),
    "member_id": ("keyed pseudonym of the member reference (member plane only)", "one member",
                  "yes, by the operator holding the member key"),
    "session_id": ("keyed pseudonym of one consented login session (member plane only)", "one login session",
                   "yes, with member_id"),
    "purpose": ("consent purpose named by the site's signed backend call", "purpose", "no (signed by the site)"),
    "action": ("grant or withdraw", "action", CLOSED),
    "policy_version": ("privacy policy version the consent refers to (sent by the site's signed backend call)",
                       "version", "no (signed by the site)"),
    "version": ("applied migration number", "migration", SERVER),
    # analyst views
    "day": ("calendar day (UTC)", "day", SERVER),
    "pageviews": ("pageviews in the group", "count", AGGREGATE),
    "visitors": ("distinct visitor pseudonyms in the group; groups below the threshold are left out", "count",
                 AGGREGATE),
    "searches": ("site searches in the group", "count", AGGREGATE),
    "events": ("events in the group", "count", AGGREGATE),
    "applied_at": ("when the migration ran", "millisecond", SERVER),
}

TABLE_MEANING = {
    "events": "anonymous plane: events not linked to any member",
    "member_events": "member plane: events after a verified, consented login, and authenticated pages",
    "consent_ledger": "every consent grant and withdrawal",
    "schema_migrations": "applied schema migrations",
    "pages_daily": "view: pageviews, visitors and engagement per page and day",
    "sources_daily": "view: traffic sources and campaigns per day",
    "searches_daily": "view: site-search terms per day",
    "locations_daily": "view: countries, regions, cities and networks per day",
    "technology_daily": "view: browsers, operating systems, devices and platforms per day",
    "events_daily": "view: events by name per day",
}


def inventory(store) -> list[dict]:
    rows = store.query_rows(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() ORDER BY table, position"
    )
    engines = dict(store.query_rows("SELECT name, engine FROM system.tables WHERE database = currentDatabase()"))
    out = []
    retention: dict[str, str] = {}
    for table, column, ctype in rows:
        if table not in retention:
            months = retention_months(store, table)
            if engines.get(table) == "View":
                retention[table] = "no data of its own (computed from events)"
            else:
                retention[table] = f"{months} months" if months else "until erased"
        meaning, grain, identifies = COLUMNS.get(column, ("UNDOCUMENTED", "?", "?"))
        out.append({"table": table, "table_meaning": TABLE_MEANING.get(table, "UNDOCUMENTED"), "column": column,
                    "type": ctype, "meaning": meaning, "granularity": grain, "retention": retention[table],
                    "identifies_person": identifies})
    return out


def render(items: list[dict]) -> str:
    lines = []
    current = None
    for it in items:
        if it["table"] != current:
            current = it["table"]
            lines.append(f"\n{current} — {it['table_meaning']} (retention: {it['retention']})")
        lines.append(f"  {it['column']:<16} {it['type']:<36} {it['granularity']:<18} "
                     f"identifies: {it['identifies_person']:<24} {it['meaning']}")
    return "\n".join(lines).lstrip("\n") + "\n"
