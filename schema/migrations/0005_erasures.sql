-- Erasure tombstones: the SHA-256 of each erased member pseudonym (never the pseudonym itself), so the
-- deletions can name their rows without writing the pseudonym into mutation entries or files:
-- lower(hex(SHA256(member_id))) IN (SELECT digest FROM erasures). See collector/privacy/erasure.py.
CREATE TABLE IF NOT EXISTS erasures
(
    digest    String,
    erased_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY digest;
