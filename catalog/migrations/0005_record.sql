-- Recording per stream (issue 50 item 2): a stream whose `record` is 0 is not kept in a
-- recording by the nodes that record; it is still served live.
--
-- Must run unchanged on SQLite and PostgreSQL, like the others: 1 (recorded) or 0 in a
-- BIGINT, as `private` is. Every stream already in the catalog stays recorded.
ALTER TABLE streams ADD COLUMN record BIGINT NOT NULL DEFAULT 1;
