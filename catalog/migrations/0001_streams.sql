-- The streams of the catalog and the hash of each one's stream key.
--
-- Must run unchanged on SQLite and PostgreSQL: plain types only (TEXT, BIGINT), no
-- backend-specific syntax. Later tables (publish sessions, recordings, nodes, API keys)
-- come in further numbered files (0002_..., 0003_...); never edit an applied one.
--
-- `name` is NOT NULL explicitly because SQLite otherwise allows NULL in a non-INTEGER
-- primary key. `key_hash` is the lowercase hex SHA-256 of the key; the key itself is never
-- stored. Times are unix seconds.
CREATE TABLE streams (
    name         TEXT   NOT NULL PRIMARY KEY,
    key_hash     TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_live_at BIGINT NULL
);
