-- +goose Up
-- Idempotency-Key on POST /api/tasks/: one row per (user, key) holds the
-- fingerprint of the first request (method, route and body) and the answer
-- it got, written in the transaction that created the task, so a task and
-- its stored answer exist together or not at all. A repeat within
-- expires_at replays the answer; the purge deletes rows past it.
CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 255),
    fingerprint bytea NOT NULL,
    status      integer NOT NULL,
    location    text NOT NULL DEFAULT '',
    etag        text NOT NULL DEFAULT '',
    body        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
