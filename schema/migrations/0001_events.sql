-- Anonymous plane: every event not linked to a member. Holds the rotating visitor pseudonym only.
CREATE TABLE IF NOT EXISTS events
(
    event_id        UUID,
    site            LowCardinality(String),
    ts              DateTime64(3, 'UTC'),
    ts_clamped      UInt8,
    name            LowCardinality(String),
    visitor_id      String,
    key_id          LowCardinality(String),
    privacy         LowCardinality(String),
    host            LowCardinality(String),
    path            String,
    query           String,
    title           String,
    referrer_host   LowCardinality(String),
    referrer_source LowCardinality(String),
    utm_source      LowCardinality(String),
    utm_medium      LowCardinality(String),
    utm_campaign    LowCardinality(String),
    utm_term        String,
    utm_content     String,
    search_term     String,
    link_url        String,
    click_text      String,
    engagement_ms   UInt32,
    props           Map(LowCardinality(String), String),
    browser         LowCardinality(String),
    browser_version LowCardinality(String),
    os              LowCardinality(String),
    os_version      LowCardinality(String),
    device          LowCardinality(String),
    country         LowCardinality(String),
    region          LowCardinality(String),
    city            LowCardinality(String),
    asn             UInt32,
    isp             LowCardinality(String),
    ip_prefix       LowCardinality(String),
    platform        LowCardinality(String),
    app_version     LowCardinality(String),
    device_model    LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site, toDate(ts), name, visitor_id, ts)
TTL toDateTime(ts) + INTERVAL {retention_anonymous_months} MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Member plane: events after a verified, consented login, and pages under authenticated prefixes.
-- Holds the member and session pseudonyms and never a visitor pseudonym.
CREATE TABLE IF NOT EXISTS member_events
(
    event_id        UUID,
    site            LowCardinality(String),
    ts              DateTime64(3, 'UTC'),
    ts_clamped      UInt8,
    name            LowCardinality(String),
    member_id       String,
    session_id      String,
    privacy         LowCardinality(String),
    host            LowCardinality(String),
    path            String,
    query           String,
    title           String,
    referrer_host   LowCardinality(String),
    referrer_source LowCardinality(String),
    utm_source      LowCardinality(String),
    utm_medium      LowCardinality(String),
    utm_campaign    LowCardinality(String),
    utm_term        String,
    utm_content     String,
    search_term     String,
    link_url        String,
    click_text      String,
    engagement_ms   UInt32,
    props           Map(LowCardinality(String), String),
    browser         LowCardinality(String),
    browser_version LowCardinality(String),
    os              LowCardinality(String),
    os_version      LowCardinality(String),
    device          LowCardinality(String),
    country         LowCardinality(String),
    region          LowCardinality(String),
    city            LowCardinality(String),
    asn             UInt32,
    isp             LowCardinality(String),
    ip_prefix       LowCardinality(String),
    platform        LowCardinality(String),
    app_version     LowCardinality(String),
    device_model    LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site, member_id, ts)
TTL toDateTime(ts) + INTERVAL {retention_member_months} MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- Consent ledger: each grant and withdrawal, per purpose and policy version, by member pseudonym.
CREATE TABLE IF NOT EXISTS consent_ledger
(
    site           LowCardinality(String),
    member_id      String,
    purpose        LowCardinality(String),
    action         LowCardinality(String),
    policy_version LowCardinality(String),
    ts             DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (site, member_id, purpose, ts)
SETTINGS non_replicated_deduplication_window = 10000;
