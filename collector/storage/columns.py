"""Column lists shared by the loader (which inserts) and the inventory (which describes)."""

COMMON = (
    "event_id", "site", "ts", "ts_clamped", "name", "privacy", "host", "path", "query", "title",
    "referrer_host", "referrer_source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "search_term", "link_url", "click_text", "engagement_ms", "props", "browser", "browser_version", "os",
    "os_version", "device", "country", "region", "city", "asn", "isp", "ip_prefix", "platform", "app_version",
    "device_model",
)

TABLES: dict[str, tuple[str, ...]] = {
    "events": COMMON + ("visitor_id", "key_id", "network_id", "region_name"),
    "member_events": COMMON + ("member_id", "session_id"),
    "consent_ledger": ("site", "member_id", "purpose", "action", "policy_version", "ts"),
}
