package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/taskmanager/internal/task"
)

// OAuthStore implements task.OAuthStore.
type OAuthStore struct{ db *DB }

// OAuth returns the OAuth store.
func (db *DB) OAuth() *OAuthStore { return &OAuthStore{db: db} }

const clientColumns = `id, client_id, name, secret_hash, redirect_uris, grant_types, scopes, created_at`

func scanClient(row pgx.Row) (*task.OAuthClient, error) {
	var c task.OAuthClient
	err := row.Scan(&c.ID, &c.ClientID, &c.Name, &c.SecretHash, &c.RedirectURIs, &c.GrantTypes, &c.Scopes, &c.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateClient stores c and fills in its id and creation time.
func (s *OAuthStore) CreateClient(ctx context.Context, c *task.OAuthClient) error {
	const q = `INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, grant_types, scopes)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`
	err := s.db.pool.QueryRow(ctx, q, c.ClientID, c.Name, c.SecretHash, c.RedirectURIs, c.GrantTypes, c.Scopes).
		Scan(&c.ID, &c.CreatedAt)
	return translate(err, "create client")
}

// FindClients returns one page of the live clients, newest first.
func (s *OAuthStore) FindClients(ctx context.Context, limit int, cur *task.Cursor) (*task.Page[*task.OAuthClient], error) {
	cmp, dir := "<", "DESC"
	if cur.Backwards() {
		cmp, dir = ">", "ASC"
	}
	q := `SELECT ` + clientColumns + ` FROM oauth_clients WHERE deleted_at IS NULL`
	args := []any{limit + 1}
	if cur != nil {
		t, err := cur.Time()
		if err != nil {
			return nil, err
		}
		q += fmt.Sprintf(" AND (created_at, id) %s ($2, $3)", cmp)
		args = append(args, t, cur.ID)
	}
	q += fmt.Sprintf(" ORDER BY created_at %s, id %s LIMIT $1", dir, dir)
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "find clients")
	}
	clients, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*task.OAuthClient, error) { return scanClient(r) })
	if err != nil {
		return nil, translate(err, "find clients")
	}
	return task.NewPage(clients, limit, cur, func(c *task.OAuthClient) task.Cursor {
		return task.TimeCursor("", c.CreatedAt, c.ID)
	}), nil
}

// FindClientByClientID returns a live client by its public client_id.
func (s *OAuthStore) FindClientByClientID(ctx context.Context, clientID string) (*task.OAuthClient, error) {
	c, err := scanClient(s.db.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM oauth_clients
		WHERE client_id = $1 AND deleted_at IS NULL`, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrNotFound
	}
	return c, translate(err, "find client")
}

// DeleteClient marks the client deleted and revokes every grant it was
// issued, in one transaction; its consents go too.
func (s *OAuthStore) DeleteClient(ctx context.Context, id uuid.UUID) error {
	return s.db.revoking(ctx, "delete client", func(tx pgx.Tx, revoke revokeFunc) error {
		tag, err := tx.Exec(ctx, `UPDATE oauth_clients SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return task.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM oauth_consents WHERE client_id = $1`, id); err != nil {
			return err
		}
		_, err = revoke(`client_id = $1`, id)
		return err
	})
}

const authRequestColumns = `id, client_id, (SELECT c.client_id FROM oauth_clients c WHERE c.id = oauth_auth_requests.client_id),
	redirect_uri, state, nonce, scopes, response_mode, code_challenge,
	user_id, coalesce(auth_time, created_at), coalesce(amr, '{}'), done, created_at, expires_at, session_id`

func scanAuthRequest(row pgx.Row) (*task.AuthRequest, error) {
	var a task.AuthRequest
	err := row.Scan(&a.ID, &a.ClientID, &a.Client, &a.RedirectURI, &a.State, &a.Nonce, &a.Scopes, &a.ResponseMode,
		&a.CodeChallenge, &a.UserID, &a.AuthTime, &a.AMR, &a.Done, &a.CreatedAt, &a.ExpiresAt, &a.SessionID)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// CreateAuthRequest stores a and fills in its times. Requests long expired
// are swept on the way: nothing refers to them any more.
func (s *OAuthStore) CreateAuthRequest(ctx context.Context, a *task.AuthRequest) error {
	return s.db.tx(ctx, "create auth request", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM oauth_auth_requests WHERE ctid IN (SELECT ctid FROM oauth_auth_requests
			WHERE expires_at < now() - interval '1 day' LIMIT 100)`); err != nil {
			return err
		}
		const q = `INSERT INTO oauth_auth_requests (id, client_id, redirect_uri, state, nonce, scopes, response_mode,
			code_challenge, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
			RETURNING created_at, expires_at`
		return tx.QueryRow(ctx, q, a.ID, a.ClientID, a.RedirectURI, a.State, a.Nonce, a.Scopes, a.ResponseMode,
			a.CodeChallenge, task.AuthRequestTTL.Seconds()).Scan(&a.CreatedAt, &a.ExpiresAt)
	})
}

// FindAuthRequest returns an unexpired request whose code was not issued yet.
func (s *OAuthStore) FindAuthRequest(ctx context.Context, id uuid.UUID) (*task.AuthRequest, error) {
	a, err := scanAuthRequest(s.db.pool.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM oauth_auth_requests
		WHERE id = $1 AND expires_at > now() AND code_hash IS NULL`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrNotFound
	}
	return a, translate(err, "find auth request")
}

// BindAuthRequest ties a request to the browser that first shows its
// sign-in page (the hash of its flow cookie); another browser is refused.
func (s *OAuthStore) BindAuthRequest(ctx context.Context, id uuid.UUID, browserHash []byte) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE oauth_auth_requests SET browser_hash = $2
		WHERE id = $1 AND expires_at > now() AND code_hash IS NULL AND (browser_hash IS NULL OR browser_hash = $2)`,
		id, browserHash)
	if err != nil {
		return translate(err, "bind auth request")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrNotFound
	}
	return nil
}

// SignInAuthRequest records the user who signed in, in the browser the
// request is bound to. Signing in again (another account) starts the
// consent over.
func (s *OAuthStore) SignInAuthRequest(ctx context.Context, id, userID uuid.UUID, authTime time.Time, amr []string, browserHash []byte) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE oauth_auth_requests SET user_id = $2, auth_time = $3, amr = $5,
		done = false WHERE id = $1 AND expires_at > now() AND code_hash IS NULL AND browser_hash = $4`, id, userID, authTime, browserHash, amr)
	if err != nil {
		return translate(err, "sign in auth request")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrNotFound
	}
	return nil
}

// ApproveAuthRequest records consent, from the browser that signed in.
func (s *OAuthStore) ApproveAuthRequest(ctx context.Context, id uuid.UUID, browserHash []byte) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE oauth_auth_requests SET done = true
		WHERE id = $1 AND expires_at > now() AND code_hash IS NULL AND user_id IS NOT NULL AND browser_hash = $2`,
		id, browserHash)
	if err != nil {
		return translate(err, "approve auth request")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrNotFound
	}
	return nil
}

// SaveAuthCode binds a code to a completed request, once.
func (s *OAuthStore) SaveAuthCode(ctx context.Context, id uuid.UUID, codeHash []byte) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE oauth_auth_requests
		SET code_hash = $2, code_expires_at = now() + make_interval(secs => $3)
		WHERE id = $1 AND done AND code_hash IS NULL AND expires_at > now()`,
		id, codeHash, task.AuthCodeTTL.Seconds())
	if err != nil {
		return translate(err, "save auth code")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrNotFound
	}
	return nil
}

// RedeemAuthCode consumes a code with one conditional UPDATE, so of
// concurrent redemptions exactly one wins. A code presented again revokes
// the grant the first redemption issued (RFC 6749 4.1.2, RFC 9700 4.5).
func (s *OAuthStore) RedeemAuthCode(ctx context.Context, codeHash []byte) (*task.AuthRequest, error) {
	a, err := scanAuthRequest(s.db.pool.QueryRow(ctx, `UPDATE oauth_auth_requests SET code_used_at = now()
		WHERE code_hash = $1 AND code_used_at IS NULL AND code_expires_at > now() RETURNING `+authRequestColumns, codeHash))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, translate(err, "redeem auth code")
	}
	var used *time.Time
	var sid *uuid.UUID
	err = s.db.pool.QueryRow(ctx, `SELECT code_used_at, session_id FROM oauth_auth_requests WHERE code_hash = $1`, codeHash).
		Scan(&used, &sid)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && used == nil) {
		return nil, task.ErrInvalidToken // unknown or expired
	}
	if err != nil {
		return nil, translate(err, "redeem auth code")
	}
	if err := s.db.revoking(ctx, "revoke reused code", func(tx pgx.Tx, revoke revokeFunc) error {
		// The first redemption may still be issuing: marking the request
		// makes a grant created after this refuse itself.
		if _, err := tx.Exec(ctx, `UPDATE oauth_auth_requests SET session_id = coalesce(session_id, '00000000-0000-0000-0000-000000000000')
			WHERE code_hash = $1`, codeHash); err != nil {
			return err
		}
		if sid == nil {
			return nil
		}
		_, err := revoke(`id = $1`, *sid)
		return err
	}); err != nil {
		return nil, err
	}
	return nil, task.ErrTokenReused
}

// CreateGrant opens a grant (a session bound to a client) and its first
// refresh token, and records it on its auth request. A user's grant waits
// for a deactivation in flight and refuses an inactive user.
func (s *OAuthStore) CreateGrant(ctx context.Context, g *task.Grant, authRequestID *uuid.UUID, refreshHash []byte, refreshExpires time.Time) error {
	return s.db.tx(ctx, "create grant", func(tx pgx.Tx) error {
		if g.UserID != nil {
			tag, err := tx.Exec(ctx, `SELECT FROM users WHERE id = $1 AND is_active FOR NO KEY UPDATE`, *g.UserID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return task.ErrTokenRevoked
			}
		}
		if g.SessionID == uuid.Nil {
			g.SessionID = uuid.New()
		}
		if authRequestID != nil {
			// A code presented twice before this commits has marked the
			// request: the grant is refused, not issued and then revoked.
			tag, err := tx.Exec(ctx, `UPDATE oauth_auth_requests SET session_id = $2 WHERE id = $1 AND session_id IS NULL`,
				*authRequestID, g.SessionID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return task.ErrTokenReused
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO sessions (id, user_id, client_id, scopes, expires_at, created_at, amr)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING expires_at`,
			g.SessionID, g.UserID, g.ClientID, g.Scopes, g.ExpiresAt, g.AuthTime, g.AMR).Scan(&g.ExpiresAt)
		if err != nil {
			return err
		}
		if refreshHash == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
			refreshHash, g.SessionID, refreshExpires)
		return err
	})
}

const grantColumns = `s.id, s.client_id, c.client_id, s.user_id, coalesce(s.scopes, '{}'), s.created_at, s.amr, s.expires_at`

func scanGrant(row pgx.Row) (*task.Grant, error) {
	var g task.Grant
	err := row.Scan(&g.SessionID, &g.ClientID, &g.Client, &g.UserID, &g.Scopes, &g.AuthTime, &g.AMR, &g.ExpiresAt)
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// liveGrant: not revoked, not expired, of a live client (c) and, for a
// user's grant, an active user.
const liveGrant = `s.revoked_at IS NULL AND s.expires_at > now() AND c.deleted_at IS NULL
	AND (s.user_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id AND u.is_active))`

// FindGrantByRefreshToken returns the grant of an unused refresh token. A
// used one is reuse: the whole family (the grant) is revoked.
func (s *OAuthStore) FindGrantByRefreshToken(ctx context.Context, hash []byte) (*task.Grant, error) {
	var used *time.Time
	var sid uuid.UUID
	err := s.db.pool.QueryRow(ctx, `SELECT rt.session_id, rt.used_at FROM refresh_tokens rt
		JOIN sessions s ON s.id = rt.session_id WHERE rt.token_hash = $1 AND rt.expires_at > now()
		AND s.client_id IS NOT NULL`, hash).Scan(&sid, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrInvalidToken
	}
	if err != nil {
		return nil, translate(err, "find refresh token")
	}
	if used != nil {
		if err := s.db.revoking(ctx, "revoke reused refresh token", func(_ pgx.Tx, revoke revokeFunc) error {
			_, err := revoke(`id = $1`, sid)
			return err
		}); err != nil {
			return nil, err
		}
		return &task.Grant{SessionID: sid}, task.ErrTokenReused
	}
	return s.FindGrant(ctx, sid)
}

// FindGrantByUnusedRefreshToken returns the live grant of an unused,
// unexpired refresh token, read only: its ExpiresAt is the token's.
func (s *OAuthStore) FindGrantByUnusedRefreshToken(ctx context.Context, hash []byte) (*task.Grant, error) {
	g, err := scanGrant(s.db.pool.QueryRow(ctx, `SELECT s.id, s.client_id, c.client_id, s.user_id, coalesce(s.scopes, '{}'),
			s.created_at, s.amr, least(s.expires_at, rt.expires_at)
		FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN oauth_clients c ON c.id = s.client_id
		WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > now() AND `+liveGrant, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrInvalidToken
	}
	return g, translate(err, "find grant by refresh token")
}

// FindGrant returns a live grant.
func (s *OAuthStore) FindGrant(ctx context.Context, sessionID uuid.UUID) (*task.Grant, error) {
	g, err := scanGrant(s.db.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM sessions s
		JOIN oauth_clients c ON c.id = s.client_id WHERE s.id = $1 AND `+liveGrant, sessionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrInvalidToken
	}
	return g, translate(err, "find grant")
}

// RevokeGrant revokes one grant of the client (RFC 7009: a token of
// another client is left alone).
func (s *OAuthStore) RevokeGrant(ctx context.Context, clientID, sessionID uuid.UUID) error {
	return s.db.revoking(ctx, "revoke grant", func(_ pgx.Tx, revoke revokeFunc) error {
		_, err := revoke(`id = $1 AND client_id = $2`, sessionID, clientID)
		return err
	})
}

// normalScopes is the stored spelling of a scope set: sorted, no repeats.
func normalScopes(scopes []string) []string {
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

// HasConsent reports whether the user consented to the client for a
// scope set that holds every one of scopes.
func (s *OAuthStore) HasConsent(ctx context.Context, userID, clientID uuid.UUID, scopes []string) (bool, error) {
	var ok bool
	err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_consents
		WHERE user_id = $1 AND client_id = $2 AND scopes @> $3)`, userID, clientID, normalScopes(scopes)).Scan(&ok)
	return ok, translate(err, "find consent")
}

// SaveConsent remembers the user's consent to the client for scopes.
func (s *OAuthStore) SaveConsent(ctx context.Context, userID, clientID uuid.UUID, scopes []string) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO oauth_consents (user_id, client_id, scopes) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, userID, clientID, normalScopes(scopes))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return task.ErrNotFound // the client or user went away meanwhile
	}
	return translate(err, "save consent")
}

// FindConsents lists the user's consents, newest first.
func (s *OAuthStore) FindConsents(ctx context.Context, userID uuid.UUID) ([]*task.Consent, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT c.client_id, c.name, k.scopes, k.created_at
		FROM oauth_consents k JOIN oauth_clients c ON c.id = k.client_id
		WHERE k.user_id = $1 AND c.deleted_at IS NULL ORDER BY k.created_at DESC, c.client_id LIMIT 1000`, userID)
	if err != nil {
		return nil, translate(err, "find consents")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*task.Consent, error) {
		var c task.Consent
		return &c, r.Scan(&c.ClientID, &c.ClientName, &c.Scopes, &c.CreatedAt)
	})
	return out, translate(err, "find consents")
}

// WithdrawConsent forgets the user's consents to the client (to every
// client when clientID is empty) and revokes its grants for the user.
// ErrNotFound for a client that is not registered; withdrawing what was
// never given is no error.
func (s *OAuthStore) WithdrawConsent(ctx context.Context, userID uuid.UUID, clientID string) error {
	return s.db.revoking(ctx, "withdraw consent", func(tx pgx.Tx, revoke revokeFunc) error {
		if clientID != "" {
			var known bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_clients WHERE client_id = $1 AND deleted_at IS NULL)`,
				clientID).Scan(&known); err != nil {
				return err
			}
			if !known {
				return task.ErrNotFound
			}
		}
		const match = `($2 = '' OR client_id = (SELECT id FROM oauth_clients WHERE client_id = $2))`
		if _, err := tx.Exec(ctx, `DELETE FROM oauth_consents WHERE user_id = $1 AND `+match, userID, clientID); err != nil {
			return err
		}
		_, err := revoke(`user_id = $1 AND client_id IS NOT NULL AND `+match, userID, clientID)
		return err
	})
}
