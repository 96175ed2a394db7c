-- Visits, re-created at every start (so the timeout follows the setting). Row-level: one row per visit
-- with its visitor pseudonym, for the admin role and as the base of the suppressed views in
-- R_views.sql; analysts read those views, not this one.
--
-- A visit is a run of one visitor's events in which no gap exceeds {session_timeout_min} minutes; an
-- engagement event (sent when a page is hidden) never opens a visit, it closes the page already
-- counted. Consecutive five-minute slices of a visitor (visit_slices) belong to one visit unless the
-- later one opens with a pageview or custom event more than the timeout after the earlier one's last
-- event. A run without any pageview or custom event (engagement only) is not a visit.
--
-- One pass over visit_slices, grouped by visitor, with no FINAL, window or join (those sorted every
-- slice with its aggregate states and ran out of memory on a few million events). Per visitor:
--   keys   each stored row's first event as Unix ms * 2 + (1 if it is an engagement event); sorting
--          by it sorts the rows by slice (a slice's events lie in its five minutes), and within a slice
--          puts first the row holding the slice's first event (a pageview before an engagement event
--          of the same millisecond, as opens_engaged's argMin key does);
--   lasts  the rows' last events in Unix ms, sorted: the same slices in the same positions, each
--          slice's latest last event at its end;
--   opens  a row opens a visit when it is the visitor's first, or it opens with a pageview or custom
--          event more than the timeout after the previous position's last event. Rows of one slice
--          never open after their first (they are under five minutes apart, the timeout is at least
--          five), so a slice stored in several parts (batches not merged yet) counts once;
-- and every other column is split at the openers in the same order (arraySort by keys, arraySplit).
-- A visit's aggregate states are merged with arrayReduce(...Merge), exactly what merging the slices
-- does, so the result does not depend on how the parts are merged. Columns a query does not read are
-- never built (each array is its own expression).
CREATE OR REPLACE VIEW visits AS
SELECT site, visitor_id, visit_no, start_ts, end_ts, duration_s, pageviews, interactions, engagement_ms, bounce,
       entry_page, exit_page,
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
                      substring(x, 15)), sorted_steps) AS steps,
       arrayMap(x -> substring(x, 15), arrayFilter(x -> substring(x, 14, 1) = 'p', sorted_steps)) AS pages
FROM
(
    SELECT site, visitor_id, toUInt64(visit_no) AS visit_no,
           fromUnixTimestamp64Milli(toInt64(intDiv(s_heads[visit_no][1], 2)), 'UTC') AS start_ts,
           fromUnixTimestamp64Milli(arrayMax(s_lasts[visit_no]), 'UTC') AS end_ts,
           (toUnixTimestamp64Milli(end_ts) - toUnixTimestamp64Milli(start_ts)) / 1000 AS duration_s,
           arraySum(x -> x.1, s_counts[visit_no]) AS pageviews,
           arraySum(x -> x.2, s_counts[visit_no]) AS interactions,
           arraySum(x -> x.3, s_counts[visit_no]) AS engagement_ms,
           toUInt8(interactions = 1) AS bounce,
           if(pageviews > 0, arrayReduce('argMinMerge', s_entry[visit_no]), '') AS entry_page,
           if(pageviews > 0, arrayReduce('argMaxMerge', s_exit[visit_no]), '') AS exit_page,
           splitByChar(char(31), arrayReduce('argMinMerge', s_source[visit_no])) AS src,
           splitByChar(char(31), arrayReduce('argMinMerge', s_client[visit_no])) AS cli,
           arraySort(arrayReduce('groupArrayArrayMerge', s_steps[visit_no])) AS sorted_steps
    FROM
    (
        SELECT site, visitor_id,
               groupArray(toUInt64(toUnixTimestamp64Milli(first_ts)) * 2 + finalizeAggregation(opens_engaged)) AS keys,
               arraySort(keys) AS heads,
               arraySort(groupArray(toUnixTimestamp64Milli(last_ts))) AS lasts,
               arrayMap((h, pl, i) -> toUInt8(i = 1 OR (h % 2 = 0 AND toInt64(intDiv(h, 2)) - pl > {session_timeout_min} * 60000)),
                        heads, arrayPushFront(arrayPopBack(lasts), toInt64(0)), arrayEnumerate(heads)) AS opens,
               arraySplit((x, o) -> o, heads, opens) AS s_heads,
               arraySplit((x, o) -> o, lasts, opens) AS s_lasts,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray((pageviews, interactions, engagement_ms)), keys), opens) AS s_counts,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(entry_page), keys), opens) AS s_entry,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(exit_page), keys), opens) AS s_exit,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(source), keys), opens) AS s_source,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(client), keys), opens) AS s_client,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(steps), keys), opens) AS s_steps
        FROM visit_slices
        GROUP BY site, visitor_id
    )
    ARRAY JOIN arrayEnumerate(s_heads) AS visit_no
    WHERE interactions > 0
);

-- visits_between(since, until): the rows of visits whose visit started on the days since..until (site
-- time zone), the same computation over the slices around those days only, so a query over a range
-- costs that range, not the stored data:
--   SELECT * FROM visits_between(since = '2025-11-01', until = '2025-11-30')
-- Which slices it needs: every slice of every visitor with a visit starting in the range, and no other
-- slice changes such a visit (a visitor's visits depend on that visitor's slices only). Two events of
-- one visitor pseudonym are at most visit_horizon_s seconds apart (the key period, the key's destruction
-- delay and twice the accepted clock skew: a pseudonym is made with the key of one period while that
-- key exists, and an event's time is within the skew of its arrival; collector.storage.migrate.
-- visit_horizon_s). So it reads the slices from that long before the range to that long after it
-- (a day more either side covers any site time zone): the visits that start before the range are
-- built whole, so none of them is mistaken for one starting in the range (an engagement event never
-- opens a visit, however long after the last event it comes), and a visit that starts in the range
-- and continues after it keeps its later slices (its end, duration, exit page, steps). The HAVING
-- drops visitors without an event in the range before their visits are built (a visit starts at one
-- of its slices' first event); the WHERE keeps the
-- visits starting in the range, exactly as toDate(start_ts) BETWEEN since AND until over visits does.
CREATE OR REPLACE VIEW visits_between AS
SELECT site, visitor_id, visit_no, start_ts, end_ts, duration_s, pageviews, interactions, engagement_ms, bounce,
       entry_page, exit_page,
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
                      substring(x, 15)), sorted_steps) AS steps,
       arrayMap(x -> substring(x, 15), arrayFilter(x -> substring(x, 14, 1) = 'p', sorted_steps)) AS pages
FROM
(
    SELECT site, visitor_id, toUInt64(visit_no) AS visit_no,
           fromUnixTimestamp64Milli(toInt64(intDiv(s_heads[visit_no][1], 2)), 'UTC') AS start_ts,
           fromUnixTimestamp64Milli(arrayMax(s_lasts[visit_no]), 'UTC') AS end_ts,
           (toUnixTimestamp64Milli(end_ts) - toUnixTimestamp64Milli(start_ts)) / 1000 AS duration_s,
           arraySum(x -> x.1, s_counts[visit_no]) AS pageviews,
           arraySum(x -> x.2, s_counts[visit_no]) AS interactions,
           arraySum(x -> x.3, s_counts[visit_no]) AS engagement_ms,
           toUInt8(interactions = 1) AS bounce,
           if(pageviews > 0, arrayReduce('argMinMerge', s_entry[visit_no]), '') AS entry_page,
           if(pageviews > 0, arrayReduce('argMaxMerge', s_exit[visit_no]), '') AS exit_page,
           splitByChar(char(31), arrayReduce('argMinMerge', s_source[visit_no])) AS src,
           splitByChar(char(31), arrayReduce('argMinMerge', s_client[visit_no])) AS cli,
           arraySort(arrayReduce('groupArrayArrayMerge', s_steps[visit_no])) AS sorted_steps
    FROM
    (
        SELECT site, visitor_id,
               groupArray(toUInt64(toUnixTimestamp64Milli(first_ts)) * 2 + finalizeAggregation(opens_engaged)) AS keys,
               arraySort(keys) AS heads,
               arraySort(groupArray(toUnixTimestamp64Milli(last_ts))) AS lasts,
               arrayMap((h, pl, i) -> toUInt8(i = 1 OR (h % 2 = 0 AND toInt64(intDiv(h, 2)) - pl > {session_timeout_min} * 60000)),
                        heads, arrayPushFront(arrayPopBack(lasts), toInt64(0)), arrayEnumerate(heads)) AS opens,
               arraySplit((x, o) -> o, heads, opens) AS s_heads,
               arraySplit((x, o) -> o, lasts, opens) AS s_lasts,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray((pageviews, interactions, engagement_ms)), keys), opens) AS s_counts,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(entry_page), keys), opens) AS s_entry,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(exit_page), keys), opens) AS s_exit,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(source), keys), opens) AS s_source,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(client), keys), opens) AS s_client,
               arraySplit((x, o) -> o, arraySort((x, k) -> k, groupArray(steps), keys), opens) AS s_steps
        FROM visit_slices
        WHERE slice_start >= toDateTime64({{since:Date}}, 0, 'UTC') - toIntervalDay(1) - toIntervalSecond({visit_horizon_s})
          AND slice_start < toDateTime64({{until:Date}}, 0, 'UTC') + toIntervalDay(2) + toIntervalSecond({visit_horizon_s})
        GROUP BY site, visitor_id
        HAVING countIf(toDate(first_ts, '{site_timezone}') BETWEEN {{since:Date}} AND {{until:Date}}) > 0
    )
    ARRAY JOIN arrayEnumerate(s_heads) AS visit_no
    WHERE interactions > 0 AND toDate(start_ts, '{site_timezone}') BETWEEN {{since:Date}} AND {{until:Date}}
);
