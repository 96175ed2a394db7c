"""ClickHouse DDL as versioned migration files, and the runner that applies them."""
