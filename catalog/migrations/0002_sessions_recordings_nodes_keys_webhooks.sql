-- What the admin API needs besides streams: publish sessions, recordings, the nodes seen,
-- API keys and webhooks.
--
-- Must run unchanged on SQLite and PostgreSQL, like 0001: plain types only (TEXT, BIGINT,
-- DOUBLE PRECISION), no backend-specific syntax. Every column is NOT NULL or NULL
-- explicitly (SQLite otherwise allows NULL in a non-INTEGER primary key). Times are unix
-- seconds. Lists (renditions, webhook events) are comma-separated TEXT, since the two
-- backends share no array type; the code checks that no item contains a comma.
--
-- No FOREIGN KEY to `streams`: sessions and recordings are history and outlive the stream
-- they belong to. A removed stream's recordings stay watchable until removed by hand or by
-- retention, and its sessions stay listed (the name may even be added again later).

-- One row per publish session. `session` is the session id as `SessionId` displays it (16
-- lowercase hex digits). The primary key is what makes "exactly one node records the
-- start" work: every node inserts with ON CONFLICT DO NOTHING. `ended_at` is NULL while
-- live; setting it only where it is NULL makes "exactly one node records the end" work.
-- `end_requested_at` is set when an operator asks for a live session to be ended; the
-- ingest node holding it polls for such requests.
CREATE TABLE sessions (
    stream           TEXT   NOT NULL,
    session          TEXT   NOT NULL,
    ingest_node      TEXT   NOT NULL,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT NULL,
    renditions       TEXT   NOT NULL,
    end_requested_at BIGINT NULL,
    PRIMARY KEY (stream, session)
);
-- The session list is newest first across all streams.
CREATE INDEX sessions_by_start ON sessions (started_at);
-- Each ingest node asks every second for end requests on its live sessions.
CREATE INDEX sessions_live_by_node ON sessions (ingest_node, ended_at);

-- One row per finished recording (VOD); `id` is its session's id. Rows are added by every
-- broadcast node that finished the recording (the primary key keeps one) and removed by
-- hand or by retention.
CREATE TABLE recordings (
    stream        TEXT             NOT NULL,
    id            TEXT             NOT NULL,
    started_at    BIGINT           NOT NULL,
    ended_at      BIGINT           NOT NULL,
    duration_secs DOUBLE PRECISION NOT NULL,
    renditions    TEXT             NOT NULL,
    PRIMARY KEY (stream, id)
);
-- Retention sweeps ask for the recordings that ended before a cutoff.
CREATE INDEX recordings_by_end ON recordings (ended_at);

-- Every node seen over MQTT, kept after it goes away. `first_seen` is set once;
-- `last_seen`, `role`, `url` and `state` come from the newest sighting.
CREATE TABLE nodes (
    id         TEXT   NOT NULL PRIMARY KEY,
    role       TEXT   NOT NULL,
    url        TEXT   NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    state      TEXT   NOT NULL
);

-- API keys, like stream keys: only the lowercase hex SHA-256 of the key is stored.
-- `scope` is `read` or `admin`. `last_used_at` is written at most once a minute.
CREATE TABLE api_keys (
    name         TEXT   NOT NULL PRIMARY KEY,
    key_hash     TEXT   NOT NULL UNIQUE,
    scope        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NULL
);

-- Webhooks. `id` is assigned by the insert as MAX(id) + 1 (auto-increment is spelled
-- differently on each backend; see `Catalog::add_webhook`), the primary key refusing a
-- duplicate from a concurrent insert. `events` lists event names (`publish`, `unpublish`,
-- `recording_ready`).
CREATE TABLE webhooks (
    id         BIGINT NOT NULL PRIMARY KEY,
    url        TEXT   NOT NULL,
    events     TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
