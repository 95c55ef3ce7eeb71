-- +goose Up
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL CHECK (char_length(username) BETWEEN 1 AND 150),
    email         text NOT NULL DEFAULT '' CHECK (char_length(email) <= 254),
    password_hash text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    is_active     boolean NOT NULL DEFAULT true,
    date_joined   timestamptz NOT NULL DEFAULT now()
);

-- Usernames are unique regardless of case, so "Alice" cannot shadow "alice".
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
-- The admin listing pages through users by join date.
CREATE INDEX users_date_joined_idx ON users (date_joined, id);

-- +goose Down
DROP TABLE users;
