-- +goose Up
-- Passkeys (WebAuthn credentials). credential is the relying party's
-- record of one, as go-webauthn keeps it: the public key, the sign
-- counter (which must move forward at every use, or the key was copied),
-- the backup flags and transports. Only public material: nothing here
-- signs anything.
CREATE TABLE passkeys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea NOT NULL UNIQUE,
    name          text NOT NULL,
    credential    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at);

-- A WebAuthn ceremony between its options and its answer, under the hash
-- of the challenge the browser signs: any instance can finish it, once,
-- within its life. user_id is the account it was begun for (none for a
-- passwordless sign-in, whose passkey names its account).
CREATE TABLE webauthn_ceremonies (
    challenge_hash bytea PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('register', 'login')),
    user_id        uuid REFERENCES users (id) ON DELETE CASCADE,
    session        jsonb NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_idx ON webauthn_ceremonies (expires_at);

-- +goose Down
DROP TABLE webauthn_ceremonies;
DROP TABLE passkeys;
