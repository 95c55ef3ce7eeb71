-- +goose Up
-- The audit trail: every security event, written in batches off the request
-- path and kept AUDIT_RETENTION (90 days by default). user_id is the user an
-- event is about and has no foreign key, so the history outlives the row it
-- names; username is copied when the event is stored, for the same reason.
-- detail holds a few ids and flags, never a credential.
CREATE TABLE audit_events (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    time       timestamptz NOT NULL,
    event      text NOT NULL CHECK (char_length(event) BETWEEN 1 AND 64),
    user_id    uuid,
    username   text,
    client_ip  text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT '',
    trace_id   text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}'
);

-- Keyset pages newest first: of everything (and the purge by age), of one
-- user, of one kind of event.
CREATE INDEX audit_events_time_idx ON audit_events (time, id);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, time, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_events_username_idx ON audit_events (lower(username), time, id) WHERE username IS NOT NULL;
CREATE INDEX audit_events_event_idx ON audit_events (event, time, id);

-- +goose Down
DROP TABLE audit_events;
