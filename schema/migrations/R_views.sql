-- Analyst views over the anonymous plane, re-created at every start (so the threshold follows the
-- setting). A group seen by fewer than {min_group_visitors} distinct visitors is left out: a rare
-- page, search term, city or network could otherwise single a person out. Events without a visitor
-- pseudonym (GPC/DNT, count-only) never make a group visible on their own.

CREATE OR REPLACE VIEW pages_daily AS
SELECT site, toDate(ts) AS day, host, path,
       countIf(name = 'pageview') AS pageviews,
       uniqExactIf(visitor_id, visitor_id != '') AS visitors,
       sumIf(engagement_ms, name = 'engagement') AS engagement_ms
FROM events
GROUP BY site, day, host, path
HAVING visitors >= {min_group_visitors};

CREATE OR REPLACE VIEW sources_daily AS
SELECT site, toDate(ts) AS day, referrer_source, utm_source, utm_medium, utm_campaign,
       countIf(name = 'pageview') AS pageviews,
       uniqExactIf(visitor_id, visitor_id != '') AS visitors
FROM events
GROUP BY site, day, referrer_source, utm_source, utm_medium, utm_campaign
HAVING visitors >= {min_group_visitors};

CREATE OR REPLACE VIEW searches_daily AS
SELECT site, toDate(ts) AS day, search_term,
       count() AS searches,
       uniqExactIf(visitor_id, visitor_id != '') AS visitors
FROM events
WHERE search_term != ''
GROUP BY site, day, search_term
HAVING visitors >= {min_group_visitors};

CREATE OR REPLACE VIEW locations_daily AS
SELECT site, toDate(ts) AS day, country, region, city, asn, isp,
       countIf(name = 'pageview') AS pageviews,
       uniqExactIf(visitor_id, visitor_id != '') AS visitors
FROM events
GROUP BY site, day, country, region, city, asn, isp
HAVING visitors >= {min_group_visitors};

CREATE OR REPLACE VIEW technology_daily AS
SELECT site, toDate(ts) AS day, browser, browser_version, os, os_version, device, platform,
       countIf(name = 'pageview') AS pageviews,
       uniqExactIf(visitor_id, visitor_id != '') AS visitors
FROM events
GROUP BY site, day, browser, browser_version, os, os_version, device, platform
HAVING visitors >= {min_group_visitors};

CREATE OR REPLACE VIEW events_daily AS
SELECT site, toDate(ts) AS day, name,
       count() AS events,
       uniqExactIf(visitor_id, visitor_id != '') AS visitors
FROM events
GROUP BY site, day, name
HAVING visitors >= {min_group_visitors};
