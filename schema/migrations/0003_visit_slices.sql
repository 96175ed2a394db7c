-- Visits are computed by ClickHouse from the anonymous plane. Every event with a visitor pseudonym
-- lands, through the materialized view below, in the five-minute slice of its visitor: one row per
-- (site, visitor, slice) once parts merge. Every column is a commutative aggregate (min, max, sum,
-- argMin, argMax, groupArray), so a slice is the same whatever order or batches its events arrive in.
-- Any two events of one slice are less than five minutes apart, so they always belong to one visit
-- (the timeout is at least five minutes); the views in R_sessions.sql join consecutive slices of a
-- visitor into visits at query time with the timeout of the settings. Same retention as events.
CREATE TABLE IF NOT EXISTS visit_slices
(
    site            LowCardinality(String),
    visitor_id      String,
    slice_start     DateTime('UTC'),
    first_ts        SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_ts         SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    opens_engaged   AggregateFunction(argMin, UInt8, UInt64),
    pageviews       SimpleAggregateFunction(sum, UInt64),
    interactions    SimpleAggregateFunction(sum, UInt64),
    engagement_ms   SimpleAggregateFunction(sum, UInt64),
    entry_page      AggregateFunction(argMin, String, UInt64),
    exit_page       AggregateFunction(argMax, String, UInt64),
    source          AggregateFunction(argMin, String, UInt64),
    client          AggregateFunction(argMin, String, UInt64),
    steps           AggregateFunction(groupArrayArray, Array(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(slice_start)
ORDER BY (site, visitor_id, slice_start)
TTL slice_start + INTERVAL {retention_anonymous_months} MONTH DELETE
SETTINGS non_replicated_deduplication_window = 10000;

-- The argMin/argMax keys are priority * 10^13 + Unix milliseconds, so that the source and the entry
-- page come from the visit's first pageview (else its first other event) and the exit page from its
-- last pageview; engagement events (sent when a page is hidden) describe a page already counted and
-- come last. source is referrer_source, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
-- utm_content joined by char(31); client is device, browser, browser_version, os, os_version,
-- country, region, city, network_id the same way. steps are the pageviews and custom events of the
-- slice as '<13-digit Unix ms><p|e><path or event name>', so sorting them sorts by time.

CREATE MATERIALIZED VIEW IF NOT EXISTS visit_slices_mv TO visit_slices AS
SELECT site, visitor_id, toStartOfFiveMinutes(toDateTime(ts, 'UTC')) AS slice_start,
       min(ts) AS first_ts,
       max(ts) AS last_ts,
       argMinState(toUInt8(name = 'engagement'), toUInt64(toUnixTimestamp64Milli(ts)) * 2 + (name = 'engagement'))
           AS opens_engaged,
       toUInt64(countIf(name = 'pageview')) AS pageviews,
       toUInt64(countIf(name != 'engagement')) AS interactions,
       toUInt64(sum(engagement_ms)) AS engagement_ms,
       argMinState(path, toUInt64(name != 'pageview') * 10000000000000 + toUInt64(toUnixTimestamp64Milli(ts))) AS entry_page,
       argMaxState(path, toUInt64(name = 'pageview') * 10000000000000 + toUInt64(toUnixTimestamp64Milli(ts))) AS exit_page,
       argMinState(arrayStringConcat([toString(referrer_source), toString(referrer_host), toString(utm_source),
                                      toString(utm_medium), toString(utm_campaign), utm_term, utm_content], char(31)),
                   toUInt64(multiIf(name = 'pageview', 0, name = 'engagement', 2, 1)) * 10000000000000
                     + toUInt64(toUnixTimestamp64Milli(ts))) AS source,
       argMinState(arrayStringConcat([toString(device), toString(browser), toString(browser_version), toString(os),
                                      toString(os_version), toString(country), toString(region), toString(city),
                                      network_id], char(31)),
                   toUInt64(name = 'engagement') * 10000000000000 + toUInt64(toUnixTimestamp64Milli(ts))) AS client,
       groupArrayArrayState(if(name = 'engagement', CAST([], 'Array(String)'),
                               [concat(leftPad(toString(toUnixTimestamp64Milli(ts)), 13, '0'),
                                       if(name = 'pageview', 'p', 'e'),
                                       if(name = 'pageview', path, toString(name)))])) AS steps
FROM events
WHERE visitor_id != ''
GROUP BY site, visitor_id, slice_start;

-- Events stored before this migration.
INSERT INTO visit_slices
SELECT site, visitor_id, toStartOfFiveMinutes(toDateTime(ts, 'UTC')) AS slice_start,
       min(ts) AS first_ts,
       max(ts) AS last_ts,
       argMinState(toUInt8(name = 'engagement'), toUInt64(toUnixTimestamp64Milli(ts)) * 2 + (name = 'engagement'))
           AS opens_engaged,
       toUInt64(countIf(name = 'pageview')) AS pageviews,
       toUInt64(countIf(name != 'engagement')) AS interactions,
       toUInt64(sum(engagement_ms)) AS engagement_ms,
       argMinState(path, toUInt64(name != 'pageview') * 10000000000000 + toUInt64(toUnixTimestamp64Milli(ts))) AS entry_page,
       argMaxState(path, toUInt64(name = 'pageview') * 10000000000000 + toUInt64(toUnixTimestamp64Milli(ts))) AS exit_page,
       argMinState(arrayStringConcat([toString(referrer_source), toString(referrer_host), toString(utm_source),
                                      toString(utm_medium), toString(utm_campaign), utm_term, utm_content], char(31)),
                   toUInt64(multiIf(name = 'pageview', 0, name = 'engagement', 2, 1)) * 10000000000000
                     + toUInt64(toUnixTimestamp64Milli(ts))) AS source,
       argMinState(arrayStringConcat([toString(device), toString(browser), toString(browser_version), toString(os),
                                      toString(os_version), toString(country), toString(region), toString(city),
                                      network_id], char(31)),
                   toUInt64(name = 'engagement') * 10000000000000 + toUInt64(toUnixTimestamp64Milli(ts))) AS client,
       groupArrayArrayState(if(name = 'engagement', CAST([], 'Array(String)'),
                               [concat(leftPad(toString(toUnixTimestamp64Milli(ts)), 13, '0'),
                                       if(name = 'pageview', 'p', 'e'),
                                       if(name = 'pageview', path, toString(name)))])) AS steps
FROM events
WHERE visitor_id != ''
GROUP BY site, visitor_id, slice_start;
