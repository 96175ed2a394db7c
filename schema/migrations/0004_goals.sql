-- Goals: what counts as a conversion, per site. A goal is reached by a visit when it has a pageview
-- whose path equals `match` (kind 'page') or a custom event whose name equals `match` (kind 'event').
-- The admin role writes it (INSERT INTO goals (site, goal, kind, match) VALUES (...)); re-inserting a
-- goal name replaces it, `ALTER TABLE goals DELETE WHERE goal = '...'` removes it.
CREATE TABLE IF NOT EXISTS goals
(
    site       LowCardinality(String),
    goal       String,
    kind       LowCardinality(String),
    match      String,
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (site, goal);
