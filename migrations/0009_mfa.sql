-- +goose Up
-- A second factor. mfa_totp holds a user's authenticator-app secret,
-- sealed with AES-256-GCM under the MFA_ENCRYPTION_KEY that key_id names
-- (never in clear), and the last time step a code was accepted for: a
-- code is refused for that step and every earlier one, so none works
-- twice. Until confirmed_at is set the secret is only being set up.
CREATE TABLE mfa_totp (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       bytea NOT NULL,
    key_id       text NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Recovery codes, by hash only; each works once.
CREATE TABLE mfa_recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- A login between its password and its second factor: the mfa_token by
-- hash, with its tries and single use. Purged once expired.
CREATE TABLE mfa_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    tries      integer NOT NULL DEFAULT 0,
    used_at    timestamptz
);
CREATE INDEX mfa_tokens_expires_idx ON mfa_tokens (expires_at);

-- How the user signed in (RFC 8176 amr) on the OAuth sign-in page, for
-- the ID tokens and access tokens the request and its grant issue.
ALTER TABLE oauth_auth_requests ADD COLUMN amr text[];
ALTER TABLE sessions ADD COLUMN amr text[];

-- +goose Down
ALTER TABLE sessions DROP COLUMN amr;
ALTER TABLE oauth_auth_requests DROP COLUMN amr;
DROP TABLE mfa_tokens;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
