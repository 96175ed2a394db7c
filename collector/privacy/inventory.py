"""The data inventory: every stored table and column, what it means, how fine it is, how long it is
kept and whether it can identify a person. Generated from the live schema, so a column without a
description here shows up as UNDOCUMENTED instead of silently passing review.
"""

from __future__ import annotations

from collector.storage.migrate import retention_months

# column -> (meaning, granularity, identifies a person?)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "event_id": ("random id of the event, for exactly-once loading", "per event", "no"),
    "site": ("the site's domain", "site", "no"),
    "ts": ("when the event happened (server clock; client clock if within the allowed skew)", "millisecond", "no"),
    "ts_clamped": ("1 when the client's timestamp was too far off and the server time was used", "flag", "no"),
    "name": ("event name: pageview, engagement, Outbound Link: Click, File Download, or custom", "event", "no"),
    "visitor_id": ("keyed pseudonym of a random client id (or of IP + browser), key rotated daily and destroyed "
                   "within 48 h; empty under GPC/DNT", "one visitor, one day", "pseudonymous, unlinkable after key "
                   "destruction"),
    "key_id": ("which visitor key made the pseudonym", "day", "no"),
    "network_id": ("keyed pseudonym of the client's network (IPv4 /24, IPv6 /48), same key and lifetime as "
                   "visitor_id; counts the small-group threshold on identities the server derives",
                   "one network, one day", "pseudonymous, unlinkable after key destruction"),
    "privacy": ("standard, or gpc when Sec-GPC/DNT was sent or the tracker saw Global Privacy Control",
                "flag", "no"),
    "host": ("page host name", "host", "no"),
    "path": ("page path with id-like segments replaced (:id, :uuid, :email) and PII detectors applied",
             "page", "no (scrubbed)"),
    "query": ("allow-listed query parameters only (utm_*, ref, source, site-search), scrubbed", "page", "no (scrubbed)"),
    "title": ("page title, scrubbed", "page", "no (scrubbed)"),
    "referrer_host": ("referring site's host name only (never its path)", "host", "no"),
    "referrer_source": ("named source (Google, Facebook, …) or ref/source parameter", "source", "no"),
    "utm_source": ("campaign source", "campaign", "no"),
    "utm_medium": ("campaign medium", "campaign", "no"),
    "utm_campaign": ("campaign name", "campaign", "no"),
    "utm_term": ("campaign term, scrubbed", "campaign", "no (scrubbed)"),
    "utm_content": ("campaign content, scrubbed", "campaign", "no (scrubbed)"),
    "search_term": ("site-search term, lower-cased and scrubbed", "search", "no (scrubbed)"),
    "link_url": ("clicked outbound or download link: scheme, host and scrubbed path", "link", "no (scrubbed)"),
    "click_text": ("text of a tagged clicked element, scrubbed", "element", "no (scrubbed)"),
    "engagement_ms": ("foreground time on the page", "millisecond", "no"),
    "props": ("custom event properties, keys and values scrubbed", "event", "no (scrubbed)"),
    "browser": ("browser family (raw User-Agent is never stored)", "family", "no"),
    "browser_version": ("browser major version", "major version", "no"),
    "os": ("operating system family", "family", "no"),
    "os_version": ("operating system major version", "major version", "no"),
    "device": ("device class: desktop, mobile, tablet", "class", "no"),
    "country": ("country from IP (raw IP never stored), or the ISO code an app sent", "country", "no"),
    "region": ("state or region from IP or app-sent ISO code, when precision allows", "region", "no"),
    "city": ("city from IP, only when COLLECTOR_GEO_PRECISION=city", "city", "no"),
    "asn": ("autonomous system number of the network (ISP or mobile carrier)", "network", "no"),
    "isp": ("organisation of the network (ISP or mobile carrier)", "network", "no"),
    "ip_prefix": ("truncated network prefix (IPv4 /16 or /24, IPv6 /48); empty unless enabled", "network", "no"),
    "platform": ("web, or the app platform (ios, android)", "platform", "no"),
    "app_version": ("app version sent by a mobile app", "version", "no"),
    "device_model": ("device model sent by a mobile app", "model", "no"),
    "member_id": ("keyed pseudonym of the member reference (member plane only)", "one member",
                  "yes, by the operator holding the member key"),
    "session_id": ("keyed pseudonym of one consented login session (member plane only)", "one login session",
                   "yes, with member_id"),
    "purpose": ("consent purpose", "purpose", "no"),
    "action": ("grant or withdraw", "action", "no"),
    "policy_version": ("privacy policy version the consent refers to", "version", "no"),
    "version": ("applied migration number", "migration", "no"),
    # analyst views
    "day": ("calendar day (UTC)", "day", "no"),
    "pageviews": ("pageviews in the group", "count", "no"),
    "visitors": ("distinct visitor pseudonyms in the group; groups below the threshold are left out", "count",
                 "no"),
    "searches": ("site searches in the group", "count", "no"),
    "events": ("events in the group", "count", "no"),
    "applied_at": ("when the migration ran", "millisecond", "no"),
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
                     f"identifies: {it['identifies_person']:<12} {it['meaning']}")
    return "\n".join(lines).lstrip("\n") + "\n"
