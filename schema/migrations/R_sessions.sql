-- Visits, re-created at every start (so the timeout follows the setting). Row-level: one row per visit
-- with its visitor pseudonym, for the admin role and as the base of the suppressed views in
-- R_views.sql; analysts read those views, not this one.
--
-- A visit is a run of one visitor's events in which no gap exceeds {session_timeout_min} minutes; an
-- engagement event (sent when a page is hidden) never opens a visit, it closes the page already
-- counted. Consecutive five-minute slices of a visitor (visit_slices) belong to one visit unless the
-- later one opens with a pageview or custom event more than the timeout after the earlier one's last
-- event. A run without any pageview or custom event (engagement only) is not a visit.
CREATE OR REPLACE VIEW visits AS
SELECT site, visitor_id, visit_no,
       start_ts, end_ts,
       (toUnixTimestamp64Milli(end_ts) - toUnixTimestamp64Milli(start_ts)) / 1000 AS duration_s,
       v_pageviews AS pageviews,
       v_interactions AS interactions,
       v_engagement_ms AS engagement_ms,
       toUInt8(v_interactions = 1) AS bounce,
       if(v_pageviews > 0, v_entry, '') AS entry_page,
       if(v_pageviews > 0, v_exit, '') AS exit_page,
       multiIf(src[1] != '', src[1], src[3] != '', src[3], 'Direct') AS source,
       src[1] AS referrer_source,
       src[2] AS referrer_host,
       src[3] AS utm_source,
       src[4] AS utm_medium,
       src[5] AS utm_campaign,
       src[6] AS utm_term,
       src[7] AS utm_content,
       cli[1] AS device,
       cli[2] AS browser,
       cli[3] AS browser_version,
       cli[4] AS os,
       cli[5] AS os_version,
       cli[6] AS country,
       cli[7] AS region,
       cli[8] AS city,
       cli[9] AS network_id,
       arrayMap(x -> (fromUnixTimestamp64Milli(toInt64(substring(x, 1, 13)), 'UTC'), toUInt8(substring(x, 14, 1) = 'p'),
                      substring(x, 15)), v_steps) AS steps,
       arrayMap(x -> substring(x, 15), arrayFilter(x -> substring(x, 14, 1) = 'p', v_steps)) AS pages
FROM
(
    SELECT site, visitor_id, visit_no,
           min(first_ts) AS start_ts,
           max(last_ts) AS end_ts,
           sum(pageviews) AS v_pageviews,
           sum(interactions) AS v_interactions,
           sum(engagement_ms) AS v_engagement_ms,
           argMinMerge(entry_page) AS v_entry,
           argMaxMerge(exit_page) AS v_exit,
           splitByChar(char(31), argMinMerge(source)) AS src,
           splitByChar(char(31), argMinMerge(client)) AS cli,
           arraySort(groupArrayArrayMerge(steps)) AS v_steps
    FROM
    (
        SELECT site, visitor_id, first_ts, last_ts, pageviews, interactions, engagement_ms,
               entry_page, exit_page, source, client, steps,
               sum(opens) OVER (PARTITION BY site, visitor_id ORDER BY slice_start
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit_no
        FROM
        (
            SELECT site, visitor_id, slice_start, first_ts, last_ts, pageviews, interactions, engagement_ms,
                   entry_page, exit_page, source, client, steps,
                   toUInt32(row_number() OVER w = 1
                            OR (finalizeAggregation(opens_engaged) = 0
                                AND toUnixTimestamp64Milli(first_ts)
                                    - toUnixTimestamp64Milli(lagInFrame(last_ts) OVER w)
                                    > {session_timeout_min} * 60000)) AS opens
            FROM visit_slices FINAL
            WINDOW w AS (PARTITION BY site, visitor_id ORDER BY slice_start
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
    )
    GROUP BY site, visitor_id, visit_no
    HAVING v_interactions > 0
);
