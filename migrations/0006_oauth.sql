-- +goose Up
-- OAuth 2.1 clients, registered by admins. A confidential client's secret
-- is stored as a SHA-256 hash only (it is 256 random bits, so a fast hash
-- is enough); a public client has none. A deleted client is kept, marked,
-- so the sessions it was issued stay revoked and its client_id is never
-- handed out again.
CREATE TABLE oauth_clients (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id     text NOT NULL UNIQUE,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    secret_hash   bytea,
    redirect_uris text[] NOT NULL,
    grant_types   text[] NOT NULL,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX oauth_clients_live_created_idx ON oauth_clients (created_at, id) WHERE deleted_at IS NULL;

-- An OAuth grant is a session: the tokens it issues carry its id, so
-- revoking it (logout-all, password change, deactivation, /oauth/revoke,
-- client deletion, refresh-token reuse) reaches every instance within a
-- second through the same LISTEN/NOTIFY as a login. A client-credentials
-- grant acts for its client and has no user.
ALTER TABLE sessions ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE sessions ADD COLUMN client_id uuid REFERENCES oauth_clients (id);
ALTER TABLE sessions ADD COLUMN scopes text[];
ALTER TABLE sessions ADD CONSTRAINT sessions_owner_check CHECK (user_id IS NOT NULL OR client_id IS NOT NULL);
CREATE INDEX sessions_client_live_idx ON sessions (client_id, user_id) WHERE client_id IS NOT NULL AND revoked_at IS NULL;

-- Authorization requests and their codes. A code lives 60 seconds, is
-- stored as a hash, works once (code_used_at), and is bound to the client,
-- the redirect URI, the PKCE challenge and the nonce of its request; the
-- session it issued is remembered so that a second use revokes it.
CREATE TABLE oauth_auth_requests (
    id             uuid PRIMARY KEY,
    client_id      uuid NOT NULL REFERENCES oauth_clients (id),
    redirect_uri   text NOT NULL,
    state          text NOT NULL DEFAULT '',
    nonce          text NOT NULL DEFAULT '',
    scopes         text[] NOT NULL,
    response_mode  text NOT NULL DEFAULT '',
    code_challenge text NOT NULL,
    -- The browser the request belongs to (a hash of its flow cookie, set
    -- when it first shows the sign-in page), who signed in there, and
    -- whether they consented: only then may a code be issued.
    user_id        uuid REFERENCES users (id) ON DELETE CASCADE,
    auth_time      timestamptz,
    browser_hash   bytea,
    done           boolean NOT NULL DEFAULT false,
    code_hash      bytea UNIQUE,
    code_expires_at timestamptz,
    code_used_at   timestamptz,
    session_id     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX oauth_auth_requests_expires_idx ON oauth_auth_requests (expires_at);

-- Consent, remembered per user, client and scope set until withdrawn.
CREATE TABLE oauth_consents (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  uuid NOT NULL REFERENCES oauth_clients (id),
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id, scopes)
);

-- +goose Down
DROP TABLE oauth_consents;
DROP TABLE oauth_auth_requests;
ALTER TABLE sessions DROP CONSTRAINT sessions_owner_check;
ALTER TABLE sessions DROP COLUMN scopes;
ALTER TABLE sessions DROP COLUMN client_id;
DELETE FROM sessions WHERE user_id IS NULL;
ALTER TABLE sessions ALTER COLUMN user_id SET NOT NULL;
DROP TABLE oauth_clients;
