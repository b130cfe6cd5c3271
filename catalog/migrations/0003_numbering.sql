-- Where each stream's numbering stands (issue 16), so that an ingest that restarts, or
-- another ingest that takes the stream over, continues it instead of starting at 0 again:
-- edges refuse sequence numbers that go back.
--
-- `next_sequence` is the media sequence number the next segment gets; an ingest raises it
-- before each segment leaves (never lowers it). `discontinuity_sequence` is that of the
-- latest publish session, raised by one when a session follows another; `sessions`
-- counts publish sessions. One column per ALTER: SQLite adds one at a time.
ALTER TABLE streams ADD COLUMN next_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN discontinuity_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN sessions BIGINT NOT NULL DEFAULT 0;
