-- +goose Up
CREATE TABLE tasks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text NOT NULL CHECK (char_length(title) BETWEEN 3 AND 200),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    completed   boolean NOT NULL DEFAULT false,
    -- version backs the ETag: every write bumps it, If-Match compares it.
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Keyset pagination of one owner's list in each ordering; the id breaks ties.
CREATE INDEX tasks_owner_created_idx ON tasks (owner_id, created_at, id);
CREATE INDEX tasks_owner_title_idx ON tasks (owner_id, title, id);

-- +goose Down
DROP TABLE tasks;
