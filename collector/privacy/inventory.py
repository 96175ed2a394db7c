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
    "digest": ("SHA-256 of an erased member pseudonym: the tombstone erasure deletes by, so no mutation names "
               "the pseudonym", "one erased member", "pseudonymous: matches only given the member pseudonym, which "
               "needs the member key and the member reference"),
    "erased_at": ("when the member was erased", "millisecond", SERVER),
    # visits and the analyst views (see docs/analytics.md)
    "slice_start": ("five-minute slice of one visitor pseudonym's events", "minute", SERVER),
    "first_ts": ("first event time in the slice", "millisecond", SERVER),
    "last_ts": ("last event time in the slice", "millisecond", SERVER),
    "opens_engaged": ("aggregate state: whether the slice's first event is an engagement event", "slice", AGGREGATE),
    "interactions": ("pageviews plus custom events", "count", AGGREGATE),
    "entry_page": ("first pageview path of the visit (a state in visit_slices)", "page", SCRUBBED),
    "exit_page": ("last pageview path of the visit (a state in visit_slices)", "page", SCRUBBED),
    "source": ("the visit's landing source: referrer source, else UTM source, else Direct (a state in "
               "visit_slices)", "source", SCRUBBED),
    "client": ("aggregate state of the landing device, browser, OS, geography and network pseudonym",
               "visitor-slice", "pseudonymous (holds network_id), unlinkable after key destruction"),
    "steps": ("pageview paths and custom event names in time order", "visit", SCRUBBED),
    "pages": ("pageview paths of the visit in order", "visit", SCRUBBED),
    "visit_no": ("number of the visit within its visitor pseudonym", "visit", SERVER),
    "start_ts": ("visit start", "millisecond", SERVER),
    "end_ts": ("visit end", "millisecond", SERVER),
    "duration_s": ("visit end minus start", "second", SERVER),
    "bounce": ("1 when the visit has one interaction", "flag", SERVER),
    "goal": ("goal name, defined by the operator", "goal", CLOSED),
    "kind": ("goal kind: page or event", "goal", CLOSED),
    "match": ("page path or event name a goal matches, defined by the operator", "goal", CLOSED),
    "created_at": ("when the goal was defined", "second", SERVER),
    "hour": ("hour in COLLECTOR_SITE_TIMEZONE", "hour", SERVER),
    "day": ("calendar day in COLLECTOR_SITE_TIMEZONE (default UTC)", "day", SERVER),
    "visits": ("visits in the group", "count", AGGREGATE),
    "bounces": ("bounced visits in the group", "count", AGGREGATE),
    "bounce_rate": ("bounces / visits", "ratio", AGGREGATE),
    "visit_duration_s": ("average visit duration", "second", AGGREGATE),
    "time_on_page_s": ("engagement seconds per pageview", "second", AGGREGATE),
    "clicks": ("link clicks", "count", AGGREGATE),
    "prop": ("custom property key", "event", SCRUBBED),
    "value": ("custom property value", "event", SCRUBBED),
    "from_path": ("a pageview path followed in the same visit by to_path", "page", SCRUBBED),
    "to_path": ("the pageview path that followed from_path", "page", SCRUBBED),
    "transitions": ("page-to-page steps in the group", "count", AGGREGATE),
    "conversions": ("visits reaching the goal", "count", AGGREGATE),
    "conversion_rate": ("conversions / visits (funnel: visits at the level / visits at the first step)", "ratio",
                        AGGREGATE),
    "level": ("funnel level number", "funnel", SERVER),
    "step": ("funnel step at the level", "funnel", SCRUBBED),
    "suppressed": ("1 when the funnel level is under the small-group threshold (its numbers read 0)", "flag",
                   SERVER),
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
    "region_name": ("display name of the region's ISO 3166-2 code (pycountry's ISO tables)", "region", CLOSED),
    "region": ("ISO 3166-2 code of the state or region (US-MA), from IP or an app-sent code, when precision "
               "allows", "region", CLOSED),
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
    "pageviews": ("pageviews in the group", "count", AGGREGATE),
    "visitors": ("distinct visitor pseudonyms in the group; groups under k visitors or k networks fold into "
                 "(other)", "count",
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
    "visit_slices": ("anonymous plane, derived: one row per visitor pseudonym and five-minute slice (times, counts, "
                     "entry/exit page, landing source and client, pageview paths and custom event names), the input "
                     "of visits; same retention as events"),
    "visit_slices_mv": "materialized view writing events into visit_slices (no data of its own)",
    "erasures": "erasure tombstones: the SHA-256 of each erased member pseudonym, kept until removed",
    "goals": "goal definitions per site (page path or event name), kept until removed",
    "visits": "view, admin only: one row per visit, with its visitor pseudonym",
    "traffic_hourly": "view: pageviews, events, visitors, visits, bounces and visit duration per hour",
    "traffic_daily": "view: pageviews, events, visitors, visits, bounces and visit duration per day",
    "pages_daily": "view: pageviews, visitors and time on page per page and day",
    "entry_pages_daily": "view: visits by entry page per day",
    "exit_pages_daily": "view: visits by exit page per day",
    "sources_daily": "view: visits by source (referrer source, else UTM source, else Direct) per day",
    "referrers_daily": "view: visits by referring host per day",
    "utm_sources_daily": "view: visits by UTM source per day",
    "utm_mediums_daily": "view: visits by UTM medium per day",
    "utm_campaigns_daily": "view: visits by UTM campaign per day",
    "utm_terms_daily": "view: visits by UTM term per day",
    "utm_contents_daily": "view: visits by UTM content per day",
    "countries_daily": "view: pageviews and visitors by country per day",
    "regions_daily": "view: pageviews and visitors by region per day",
    "cities_daily": "view: pageviews and visitors by city per day",
    "isps_daily": "view: pageviews and visitors by network (ASN, ISP) per day",
    "browsers_daily": "view: pageviews and visitors by browser per day",
    "browser_versions_daily": "view: pageviews and visitors by browser version per day",
    "os_daily": "view: pageviews and visitors by operating system per day",
    "os_versions_daily": "view: pageviews and visitors by OS version per day",
    "devices_daily": "view: pageviews and visitors by device class per day",
    "platforms_daily": "view: pageviews and visitors by platform per day",
    "searches_daily": "view: site-search terms per day",
    "events_daily": "view: events by name per day",
    "event_props_daily": "view: custom events by property key and value per day",
    "outbound_links_daily": "view: outbound link clicks per day",
    "downloads_daily": "view: file downloads per day",
    "transitions_daily": "view: page-to-page transitions (the click stream) per day",
    "goals_daily": "view: goal conversions and conversion rate per day",
    "funnel": "view: funnel levels over a step list (parameterized)",
    "realtime": "view: visitors in the last minutes",
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
            if engines.get(table) in ("View", "MaterializedView"):
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
