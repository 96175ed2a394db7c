-- Analyst views over the anonymous plane, re-created at every start (so the threshold, the visit
-- timeout and the time zone follow the settings). Columns are plain values; docs/analytics.md lists
-- them. Small counts: a group is shown only when at least {min_group_visitors} distinct visitor
-- pseudonyms AND at least {min_group_visitors} distinct network pseudonyms are in it (a client can
-- invent client ids, not networks); every other group is folded into one "(other)" row per day (0 for
-- numbers), so totals add up. Events without a visitor pseudonym (GPC/DNT, count-only) are counted
-- in pageviews, searches and events but never make a group visible and are not visits or visitors.
-- "day" and "hour" are in the site time zone ({site_timezone}). Whether a group has k distinct networks
-- is decided with groupUniqArray(k), which keeps at most k distinct values: exact for "at least k",
-- without holding every network of the group; its visitors are counted once, by its uniqExact state.
--
-- Every view over visits is defined once, as <view>_between(since, until), a parameterized view: the
-- rows of <view> whose day (for traffic_hourly: the day of the hour) is one of since..until, computed
-- from visits_between (R_sessions.sql), which reads only the visit slices around those days. <view>
-- itself is the same view over every day, for tools that filter on day or hour (Grafana, Superset);
-- filtering it gives the same rows as the twin, but builds every stored visit first.
--   SELECT source, sum(visits) FROM sources_daily_between(since = '2025-11-01', until = '2025-11-30')
--   WHERE site = 'example.org' GROUP BY source

DROP VIEW IF EXISTS locations_daily;

DROP VIEW IF EXISTS technology_daily;

-- Traffic over time: pageviews and events (GPC included) and distinct visitors of the hour; visits,
-- bounces and duration of the visits that started in the hour. Totals, not groups: nothing is folded.
CREATE OR REPLACE VIEW traffic_hourly_between AS
SELECT site, hour,
       sum(t_pageviews) AS pageviews,
       sum(t_events) AS events,
       sum(t_visitors) AS visitors,
       sum(t_visits) AS visits,
       sum(t_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(t_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toStartOfHour(toDateTime(ts, '{site_timezone}')) AS hour,
           countIf(name = 'pageview') AS t_pageviews, countIf(name != 'engagement') AS t_events,
           uniqExactIf(visitor_id, visitor_id != '') AS t_visitors,
           toUInt64(0) AS t_visits, toUInt64(0) AS t_bounces, toFloat64(0) AS t_duration_s
    FROM events
    WHERE ts >= toDateTime64({{since:Date}}, 3, 'UTC') - toIntervalDay(1) AND ts < toDateTime64({{until:Date}}, 3, 'UTC') + toIntervalDay(2)
      AND toDate(ts, '{site_timezone}') BETWEEN {{since:Date}} AND {{until:Date}}
    GROUP BY site, hour
    UNION ALL
    SELECT site, toStartOfHour(toDateTime(start_ts, '{site_timezone}')) AS hour,
           toUInt64(0), toUInt64(0), toUInt64(0),
           count(), toUInt64(sum(bounce)), toFloat64(sum(duration_s))
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, hour
)
GROUP BY site, hour;

-- traffic_hourly over every day.
CREATE OR REPLACE VIEW traffic_hourly AS
SELECT * FROM traffic_hourly_between(since = '1970-01-01', until = '2149-06-05');

-- The same per day.
CREATE OR REPLACE VIEW traffic_daily_between AS
SELECT site, day,
       sum(t_pageviews) AS pageviews,
       sum(t_events) AS events,
       sum(t_visitors) AS visitors,
       sum(t_visits) AS visits,
       sum(t_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(t_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day,
           countIf(name = 'pageview') AS t_pageviews, countIf(name != 'engagement') AS t_events,
           uniqExactIf(visitor_id, visitor_id != '') AS t_visitors,
           toUInt64(0) AS t_visits, toUInt64(0) AS t_bounces, toFloat64(0) AS t_duration_s
    FROM events
    WHERE ts >= toDateTime64({{since:Date}}, 3, 'UTC') - toIntervalDay(1) AND ts < toDateTime64({{until:Date}}, 3, 'UTC') + toIntervalDay(2)
      AND toDate(ts, '{site_timezone}') BETWEEN {{since:Date}} AND {{until:Date}}
    GROUP BY site, day
    UNION ALL
    SELECT site, toDate(start_ts, '{site_timezone}') AS day,
           toUInt64(0), toUInt64(0), toUInt64(0),
           count(), toUInt64(sum(bounce)), toFloat64(sum(duration_s))
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day
)
GROUP BY site, day;

-- traffic_daily over every day.
CREATE OR REPLACE VIEW traffic_daily AS
SELECT * FROM traffic_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Pages: pageviews, visitors, and engagement (visible time) with its average per pageview.
CREATE OR REPLACE VIEW pages_daily AS
SELECT site, day,
       if(visible, g_host, '(other)') AS host,
       if(visible, g_path, '(other)') AS path,
       sum(g_pageviews) AS pageviews,
       sum(g_engagement_ms) AS engagement_ms,
       uniqExactMerge(g_visitors) AS visitors,
       if(pageviews > 0, round(engagement_ms / 1000 / pageviews, 3), 0) AS time_on_page_s
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, host AS g_host, path AS g_path,
           countIf(name = 'pageview') AS g_pageviews,
           toUInt64(sum(engagement_ms)) AS g_engagement_ms,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    WHERE name IN ('pageview', 'engagement')
    GROUP BY site, day, g_host, g_path
)
GROUP BY site, day, host, path;

-- Entry pages: the first page of each visit.
CREATE OR REPLACE VIEW entry_pages_daily_between AS
SELECT site, day,
       if(visible, g_entry_page, '(other)') AS entry_page,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, entry_page AS g_entry_page,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    WHERE pageviews > 0
    GROUP BY site, day, g_entry_page
)
GROUP BY site, day, entry_page;

-- entry_pages_daily over every day.
CREATE OR REPLACE VIEW entry_pages_daily AS
SELECT * FROM entry_pages_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Exit pages: the last page of each visit.
CREATE OR REPLACE VIEW exit_pages_daily_between AS
SELECT site, day,
       if(visible, g_exit_page, '(other)') AS exit_page,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, exit_page AS g_exit_page,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    WHERE pageviews > 0
    GROUP BY site, day, g_exit_page
)
GROUP BY site, day, exit_page;

-- exit_pages_daily over every day.
CREATE OR REPLACE VIEW exit_pages_daily AS
SELECT * FROM exit_pages_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Sources per visit: the named referrer source, else the UTM source, else Direct, of the visit's first pageview.
CREATE OR REPLACE VIEW sources_daily_between AS
SELECT site, day,
       if(visible, g_source, '(other)') AS source,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, source AS g_source,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_source
)
GROUP BY site, day, source;

-- sources_daily over every day.
CREATE OR REPLACE VIEW sources_daily AS
SELECT * FROM sources_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Referring hosts per visit ('' when none).
CREATE OR REPLACE VIEW referrers_daily_between AS
SELECT site, day,
       if(visible, g_referrer_host, '(other)') AS referrer_host,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, referrer_host AS g_referrer_host,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_referrer_host
)
GROUP BY site, day, referrer_host;

-- referrers_daily over every day.
CREATE OR REPLACE VIEW referrers_daily AS
SELECT * FROM referrers_daily_between(since = '1970-01-01', until = '2149-06-05');

-- UTM source per visit ('' when none).
CREATE OR REPLACE VIEW utm_sources_daily_between AS
SELECT site, day,
       if(visible, g_utm_source, '(other)') AS utm_source,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, utm_source AS g_utm_source,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_utm_source
)
GROUP BY site, day, utm_source;

-- utm_sources_daily over every day.
CREATE OR REPLACE VIEW utm_sources_daily AS
SELECT * FROM utm_sources_daily_between(since = '1970-01-01', until = '2149-06-05');

-- UTM medium per visit ('' when none).
CREATE OR REPLACE VIEW utm_mediums_daily_between AS
SELECT site, day,
       if(visible, g_utm_medium, '(other)') AS utm_medium,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, utm_medium AS g_utm_medium,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_utm_medium
)
GROUP BY site, day, utm_medium;

-- utm_mediums_daily over every day.
CREATE OR REPLACE VIEW utm_mediums_daily AS
SELECT * FROM utm_mediums_daily_between(since = '1970-01-01', until = '2149-06-05');

-- UTM campaign per visit ('' when none).
CREATE OR REPLACE VIEW utm_campaigns_daily_between AS
SELECT site, day,
       if(visible, g_utm_campaign, '(other)') AS utm_campaign,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, utm_campaign AS g_utm_campaign,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_utm_campaign
)
GROUP BY site, day, utm_campaign;

-- utm_campaigns_daily over every day.
CREATE OR REPLACE VIEW utm_campaigns_daily AS
SELECT * FROM utm_campaigns_daily_between(since = '1970-01-01', until = '2149-06-05');

-- UTM term per visit ('' when none).
CREATE OR REPLACE VIEW utm_terms_daily_between AS
SELECT site, day,
       if(visible, g_utm_term, '(other)') AS utm_term,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, utm_term AS g_utm_term,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_utm_term
)
GROUP BY site, day, utm_term;

-- utm_terms_daily over every day.
CREATE OR REPLACE VIEW utm_terms_daily AS
SELECT * FROM utm_terms_daily_between(since = '1970-01-01', until = '2149-06-05');

-- UTM content per visit ('' when none).
CREATE OR REPLACE VIEW utm_contents_daily_between AS
SELECT site, day,
       if(visible, g_utm_content, '(other)') AS utm_content,
       sum(g_visits) AS visits,
       uniqExactMerge(g_visitors) AS visitors,
       sum(g_pageviews) AS pageviews,
       sum(g_bounces) AS bounces,
       if(visits > 0, round(bounces / visits, 4), 0) AS bounce_rate,
       if(visits > 0, round(sum(g_duration_s) / visits, 3), 0) AS visit_duration_s
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, utm_content AS g_utm_content,
           count() AS g_visits,
           uniqExactState(visitor_id) AS g_visitors,
           sum(pageviews) AS g_pageviews,
           sum(bounce) AS g_bounces,
           sum(duration_s) AS g_duration_s,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    GROUP BY site, day, g_utm_content
)
GROUP BY site, day, utm_content;

-- utm_contents_daily over every day.
CREATE OR REPLACE VIEW utm_contents_daily AS
SELECT * FROM utm_contents_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Countries. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW countries_daily AS
SELECT site, day,
       if(visible, g_country, '(other)') AS country,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, country AS g_country,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_country
)
GROUP BY site, day, country;

-- Regions (ISO 3166-2 subdivision within its country). One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW regions_daily AS
SELECT site, day,
       if(visible, g_country, '(other)') AS country,
       if(visible, g_region, '(other)') AS region,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, country AS g_country, region AS g_region,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_country, g_region
)
GROUP BY site, day, country, region;

-- Cities (only stored at COLLECTOR_GEO_PRECISION=city). One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW cities_daily AS
SELECT site, day,
       if(visible, g_country, '(other)') AS country,
       if(visible, g_region, '(other)') AS region,
       if(visible, g_city, '(other)') AS city,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, country AS g_country, region AS g_region, city AS g_city,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_country, g_region, g_city
)
GROUP BY site, day, country, region, city;

-- Networks: autonomous system number and its organisation (ISP or carrier). One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW isps_daily AS
SELECT site, day,
       if(visible, g_asn, 0) AS asn,
       if(visible, g_isp, '(other)') AS isp,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, asn AS g_asn, isp AS g_isp,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_asn, g_isp
)
GROUP BY site, day, asn, isp;

-- Browser families. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW browsers_daily AS
SELECT site, day,
       if(visible, g_browser, '(other)') AS browser,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, browser AS g_browser,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_browser
)
GROUP BY site, day, browser;

-- Browser family and major version. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW browser_versions_daily AS
SELECT site, day,
       if(visible, g_browser, '(other)') AS browser,
       if(visible, g_browser_version, '(other)') AS browser_version,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, browser AS g_browser, browser_version AS g_browser_version,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_browser, g_browser_version
)
GROUP BY site, day, browser, browser_version;

-- Operating system families. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW os_daily AS
SELECT site, day,
       if(visible, g_os, '(other)') AS os,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, os AS g_os,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_os
)
GROUP BY site, day, os;

-- Operating system family and major version. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW os_versions_daily AS
SELECT site, day,
       if(visible, g_os, '(other)') AS os,
       if(visible, g_os_version, '(other)') AS os_version,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, os AS g_os, os_version AS g_os_version,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_os, g_os_version
)
GROUP BY site, day, os, os_version;

-- Device classes. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW devices_daily AS
SELECT site, day,
       if(visible, g_device, '(other)') AS device,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, device AS g_device,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_device
)
GROUP BY site, day, device;

-- Platforms: web, or the app platform. One dimension; visitors are distinct pseudonyms of the day.
CREATE OR REPLACE VIEW platforms_daily AS
SELECT site, day,
       if(visible, g_platform, '(other)') AS platform,
       sum(g_pageviews) AS pageviews,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, platform AS g_platform,
           countIf(name = 'pageview') AS g_pageviews,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_platform
)
GROUP BY site, day, platform;

-- Site-search terms.
CREATE OR REPLACE VIEW searches_daily AS
SELECT site, day,
       if(visible, g_search_term, '(other)') AS search_term,
       sum(g_searches) AS searches,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, search_term AS g_search_term,
           count() AS g_searches,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    WHERE search_term != ''
    GROUP BY site, day, g_search_term
)
GROUP BY site, day, search_term;

-- Events by name (pageview and engagement included).
CREATE OR REPLACE VIEW events_daily AS
SELECT site, day,
       if(visible, g_name, '(other)') AS name,
       sum(g_events) AS events,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, name AS g_name,
           count() AS g_events,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    GROUP BY site, day, g_name
)
GROUP BY site, day, name;

-- Outbound links clicked.
CREATE OR REPLACE VIEW outbound_links_daily AS
SELECT site, day,
       if(visible, g_link_url, '(other)') AS link_url,
       sum(g_clicks) AS clicks,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, link_url AS g_link_url,
           count() AS g_clicks,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    WHERE name = 'Outbound Link: Click'
    GROUP BY site, day, g_link_url
)
GROUP BY site, day, link_url;

-- File downloads.
CREATE OR REPLACE VIEW downloads_daily AS
SELECT site, day,
       if(visible, g_link_url, '(other)') AS link_url,
       sum(g_clicks) AS clicks,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(ts, '{site_timezone}') AS day, link_url AS g_link_url,
           count() AS g_clicks,
           uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM events
    WHERE name = 'File Download'
    GROUP BY site, day, g_link_url
)
GROUP BY site, day, link_url;

-- Custom event properties: events per (name, property, value). A value seen by too few visitors
-- or networks folds into value '(other)' of its property; an event name seen by too few (over all its
-- properties) folds into name and property '(other)' too.
CREATE OR REPLACE VIEW event_props_daily AS
SELECT site, day,
       if(name_visible, g_name, '(other)') AS name,
       if(name_visible, g_prop, '(other)') AS prop,
       if(visible, g_value, '(other)') AS value,
       sum(g_events) AS events,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT *,
           uniqExactMerge(g_visitors) OVER (PARTITION BY site, day, g_name) >= {min_group_visitors}
             AND uniqExactMerge(g_networks) OVER (PARTITION BY site, day, g_name) >= {min_group_visitors} AS name_visible
    FROM
    (
        SELECT site, toDate(ts, '{site_timezone}') AS day, toString(name) AS g_name, p_key AS g_prop, p_value AS g_value,
               count() AS g_events,
               uniqExactState(nullIf(visitor_id, '')) AS g_visitors,
               uniqExactState(nullIf(network_id, '')) AS g_networks,
               finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
        FROM events
        ARRAY JOIN mapKeys(props) AS p_key, mapValues(props) AS p_value
        WHERE name NOT IN ('pageview', 'engagement')
        GROUP BY site, day, g_name, g_prop, g_value
    )
)
GROUP BY site, day, name, prop, value;

-- Page-to-page transitions (the click stream): consecutive pageviews within a visit.
CREATE OR REPLACE VIEW transitions_daily_between AS
SELECT site, day,
       if(visible, g_from, '(other)') AS from_path,
       if(visible, g_to, '(other)') AS to_path,
       sum(g_transitions) AS transitions,
       uniqExactMerge(g_visitors) AS visitors
FROM
(
    SELECT site, toDate(start_ts, '{site_timezone}') AS day, pair.1 AS g_from, pair.2 AS g_to,
           count() AS g_transitions,
           uniqExactState(visitor_id) AS g_visitors,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) >= {min_group_visitors} AS visible
    FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    ARRAY JOIN arrayZip(arrayPopBack(pages), arrayPopFront(pages)) AS pair
    WHERE length(pages) > 1
    GROUP BY site, day, g_from, g_to
)
GROUP BY site, day, from_path, to_path;

-- transitions_daily over every day.
CREATE OR REPLACE VIEW transitions_daily AS
SELECT * FROM transitions_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Goals (table goals): visits that reached each goal, and conversion_rate = those visits / all visits
-- of the day. Goals reached by too few visitors or networks fold into '(other)'. Every visit of a site
-- meets every goal of the site once in the join, so count() per (day, goal) is the day's visits: the
-- visits are computed once.
CREATE OR REPLACE VIEW goals_daily_between AS
SELECT site, day,
       if(visible, g_goal, '(other)') AS goal,
       sum(g_conversions) AS conversions,
       uniqExactMerge(g_visitors) AS visitors,
       any(g_visits) AS visits,
       if(visits > 0, round(conversions / visits, 4), 0) AS conversion_rate
FROM
(
    SELECT v.site AS site, v.day AS day, gl.goal AS g_goal,
           countIf(reached) AS g_conversions,
           uniqExactState(if(reached, v.visitor_id, NULL)) AS g_visitors,
           count() AS g_visits,
           finalizeAggregation(g_visitors) >= {min_group_visitors}
             AND length(groupUniqArrayIf({min_group_visitors})(v.network_id, reached)) >= {min_group_visitors} AS visible
    FROM
    (
        SELECT site, toDate(start_ts, '{site_timezone}') AS day, visitor_id, network_id, steps
        FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
    ) AS v
    INNER JOIN (SELECT site, goal, argMax(kind, created_at) AS kind, argMax(match, created_at) AS match
                FROM goals GROUP BY site, goal) AS gl ON v.site = gl.site
    ARRAY JOIN [arrayExists(s -> s.2 = toUInt8(gl.kind = 'page') AND s.3 = gl.match, v.steps)] AS reached
    GROUP BY site, day, g_goal
)
GROUP BY site, day, goal;

-- goals_daily over every day.
CREATE OR REPLACE VIEW goals_daily AS
SELECT * FROM goals_daily_between(since = '1970-01-01', until = '2149-06-05');

-- Funnel over a step list, within visits that started on days [since, until] (site time zone):
--   SELECT * FROM funnel(steps = ['/plans', '/quote', 'Signup'], since = '2025-01-01', until = '2025-01-31')
-- A step matches a pageview of that path or a custom event of that name; a visit reaches level n when
-- it has steps 1..n in this order (other events may come between). visits and visitors count the
-- visits reaching at least the level; conversion_rate is relative to level 1. A level reached by too
-- few visitors or networks reads 0 with suppressed = 1 (levels are nested, so there is no "(other)").
CREATE OR REPLACE VIEW funnel AS
SELECT site, level, step,
       if(suppressed, 0, f_visits) AS visits,
       if(suppressed, 0, f_visitors) AS visitors,
       if(suppressed OR first_visits = 0, 0, round(f_visits / first_visits, 4)) AS conversion_rate,
       suppressed
FROM
(
    -- the levels nest, so level 1 has the most visits of its site
    SELECT *, max(f_visits) OVER (PARTITION BY site) AS first_visits
    FROM
    (
        SELECT site, level, {{steps:Array(String)}}[level] AS step,
               countIf(reached >= level) AS f_visits,
               uniqExactIf(visitor_id, reached >= level) AS f_visitors,
               toUInt8(f_visitors < {min_group_visitors} OR length(groupUniqArrayIf({min_group_visitors})(network_id, reached >= level)) < {min_group_visitors}) AS suppressed
        FROM
        (
            SELECT site, visitor_id, network_id,
                   arrayFold((acc, s) -> if(acc < length({{steps:Array(String)}})
                                            AND s.3 = {{steps:Array(String)}}[acc + 1], acc + 1, acc),
                             steps, toUInt64(0)) AS reached
            FROM visits_between(since = {{since:Date}}, until = {{until:Date}})
        )
        ARRAY JOIN arrayEnumerate({{steps:Array(String)}}) AS level
        GROUP BY site, level
    )
);

-- Realtime: distinct visitors and pageviews (GPC included) of the last five minutes, per site. Shown
-- only when at least {min_group_visitors} distinct visitors and networks are in it; otherwise both read
-- 0 with suppressed = 1 (one group per site, so there is no "(other)").
CREATE OR REPLACE VIEW realtime AS
SELECT site,
       if(suppressed, 0, r_visitors) AS visitors,
       if(suppressed, 0, r_pageviews) AS pageviews,
       suppressed
FROM
(
    SELECT site,
           uniqExactIf(visitor_id, visitor_id != '') AS r_visitors,
           countIf(name = 'pageview') AS r_pageviews,
           toUInt8(r_visitors < {min_group_visitors}
                   OR length(groupUniqArrayIf({min_group_visitors})(network_id, network_id != '')) < {min_group_visitors}) AS suppressed
    FROM events
    WHERE ts >= now64(3) - toIntervalMinute(5) AND toDate(ts) >= toDate(now() - toIntervalMinute(5))
    GROUP BY site
);
