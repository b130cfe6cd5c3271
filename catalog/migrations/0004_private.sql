-- Private streams (issue 34): a private stream is served only with a playback token.
--
-- Must run unchanged on SQLite and PostgreSQL, like the others: 0 (public) or 1
-- (private) in a BIGINT, since the two backends share no boolean spelling SQLite keeps as
-- such. Every stream already in the catalog stays public.
ALTER TABLE streams ADD COLUMN private BIGINT NOT NULL DEFAULT 0;
