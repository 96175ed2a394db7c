-- Regions are ISO 3166-2 codes (US-MA, FR-IDF) whatever the geography database or the app sent; this
-- is the subdivision's display name from the same ISO table, for dashboards.
ALTER TABLE events ADD COLUMN IF NOT EXISTS region_name LowCardinality(String) AFTER region;
