package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/task"
)

// MFAStore implements task.MFAStore.
type MFAStore struct{ db *DB }

// MFA returns the second-factor store.
func (db *DB) MFA() *MFAStore { return &MFAStore{db: db} }

// StartTOTP stores a pending secret; a confirmed one is never replaced.
func (s *MFAStore) StartTOTP(ctx context.Context, t *task.TOTP) error {
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO mfa_totp (user_id, secret, key_id) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, key_id = excluded.key_id, created_at = now(), last_step = 0
		WHERE mfa_totp.confirmed_at IS NULL`, t.UserID, t.Sealed, t.KeyID)
	if err != nil {
		return translate(err, "start totp")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrMFAEnrolled
	}
	return nil
}

// FindTOTP returns the user's TOTP secret.
func (s *MFAStore) FindTOTP(ctx context.Context, userID uuid.UUID) (*task.TOTP, error) {
	t := task.TOTP{UserID: userID}
	err := s.db.pool.QueryRow(ctx, `SELECT secret, key_id, confirmed_at IS NOT NULL, last_step FROM mfa_totp WHERE user_id = $1`,
		userID).Scan(&t.Sealed, &t.KeyID, &t.Confirmed, &t.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrNotFound
	}
	if err != nil {
		return nil, translate(err, "find totp")
	}
	return &t, nil
}

// ConfirmTOTP confirms the pending secret and stores the recovery codes,
// in one transaction.
func (s *MFAStore) ConfirmTOTP(ctx context.Context, userID uuid.UUID, step int64, hashes [][]byte) error {
	return s.db.tx(ctx, "confirm totp", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE mfa_totp SET confirmed_at = now(), last_step = $2
			WHERE user_id = $1 AND confirmed_at IS NULL AND last_step < $2`, userID, step)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return task.ErrMFANotEnrolled
		}
		return replaceCodes(ctx, tx, userID, hashes)
	})
}

func replaceCodes(ctx context.Context, tx pgx.Tx, userID uuid.UUID, hashes [][]byte) error {
	if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO mfa_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])`, userID, hashes)
	return err
}

// UseTOTPStep moves last_step forward to step; a step not later than it
// changes nothing, so two racing uses of one code cannot both succeed.
func (s *MFAStore) UseTOTPStep(ctx context.Context, userID uuid.UUID, step int64) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE mfa_totp SET last_step = $2
		WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2`, userID, step)
	if err != nil {
		return false, translate(err, "use totp step")
	}
	return tag.RowsAffected() == 1, nil
}

// UseRecoveryCode spends the unused code with hash.
func (s *MFAStore) UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE mfa_recovery_codes SET used_at = now()
		WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, userID, hash)
	if err != nil {
		return false, translate(err, "use recovery code")
	}
	return tag.RowsAffected() == 1, nil
}

// ReplaceRecoveryCodes stores new codes in place of the old ones.
func (s *MFAStore) ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, hashes [][]byte) error {
	return s.db.tx(ctx, "replace recovery codes", func(tx pgx.Tx) error {
		return replaceCodes(ctx, tx, userID, hashes)
	})
}

// DeleteMFA removes the user's TOTP secret, passkeys and recovery codes,
// and the logins waiting for a second factor.
func (s *MFAStore) DeleteMFA(ctx context.Context, userID uuid.UUID) (bool, error) {
	var had bool
	err := s.db.tx(ctx, "delete mfa", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL`, userID)
		if err != nil {
			return err
		}
		had = tag.RowsAffected() > 0
		if tag, err = tx.Exec(ctx, `DELETE FROM passkeys WHERE user_id = $1`, userID); err != nil {
			return err
		}
		had = had || tag.RowsAffected() > 0
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM mfa_tokens WHERE user_id = $1`, userID)
		return err
	})
	return had, err
}

// CreateMFAToken stores an mfa_token's hash.
func (s *MFAStore) CreateMFAToken(ctx context.Context, hash []byte, userID uuid.UUID, expires time.Time) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO mfa_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`, hash, userID, expires)
	return translate(err, "create mfa token")
}

// TakeMFATry counts one try of a live token. The try is counted in the
// same statement that checks the limit, so racing tries cannot exceed it.
func (s *MFAStore) TakeMFATry(ctx context.Context, hash []byte) (uuid.UUID, error) {
	var userID uuid.UUID
	err := s.db.pool.QueryRow(ctx, `UPDATE mfa_tokens SET tries = tries + 1
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() AND tries < $2 RETURNING user_id`,
		hash, task.MFATokenTries).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, task.ErrMFATokenInvalid
	}
	return userID, translate(err, "take mfa try")
}

// UseMFAToken marks the token used: it works once.
func (s *MFAStore) UseMFAToken(ctx context.Context, hash []byte) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE mfa_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL`, hash)
	if err != nil {
		return translate(err, "use mfa token")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrMFATokenInvalid
	}
	return nil
}

// DeleteTOTP removes the user's TOTP secret; passkeys stay, and the
// recovery codes with them.
func (s *MFAStore) DeleteTOTP(ctx context.Context, userID uuid.UUID) error {
	return s.db.tx(ctx, "delete totp", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = $1`, userID); err != nil {
			return err
		}
		return dropOrphanCodes(ctx, tx, userID)
	})
}

// dropOrphanCodes deletes the user's recovery codes once no second factor
// is left for them to stand in for: they must not come back to life with
// the next one.
func dropOrphanCodes(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	_, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1
		AND NOT EXISTS (SELECT FROM passkeys WHERE user_id = $1)
		AND NOT EXISTS (SELECT FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)`, userID)
	return err
}

// HasRecoveryCodes reports whether the user holds an unused recovery code.
func (s *MFAStore) HasRecoveryCodes(ctx context.Context, userID uuid.UUID) (bool, error) {
	var has bool
	err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL)`,
		userID).Scan(&has)
	return has, translate(err, "has recovery codes")
}

// CreatePasskey stores a new passkey under the user's quota.
func (s *MFAStore) CreatePasskey(ctx context.Context, p *task.Passkey) error {
	return s.db.tx(ctx, "create passkey", func(tx pgx.Tx) error {
		err := underQuota(ctx, tx, p.UserID, task.MaxPasskeysPerUser, `SELECT count(*) FROM passkeys WHERE user_id = $1`)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO passkeys (user_id, credential_id, name, credential) VALUES ($1, $2, $3, $4)
			ON CONFLICT (credential_id) DO NOTHING RETURNING id, created_at`,
			p.UserID, p.CredentialID, p.Name, p.Credential).Scan(&p.ID, &p.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return task.ErrPasskeyExists
		}
		return err
	})
}

// FindPasskeys returns the user's passkeys, oldest first.
func (s *MFAStore) FindPasskeys(ctx context.Context, userID uuid.UUID) ([]*task.Passkey, error) {
	rows, _ := s.db.pool.Query(ctx, `SELECT id, name, credential_id, credential, created_at, last_used_at
		FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`, userID)
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*task.Passkey, error) {
		p := task.Passkey{UserID: userID}
		return &p, row.Scan(&p.ID, &p.Name, &p.CredentialID, &p.Credential, &p.CreatedAt, &p.LastUsedAt)
	})
	return keys, translate(err, "find passkeys")
}

// UsePasskey stores the passkey's record after a sign-in. The counter is
// compared in the statement that writes it, so of two racing answers with
// one count (the key and a copy of it) only one is accepted, and a lower
// count never overwrites a higher one.
func (s *MFAStore) UsePasskey(ctx context.Context, id uuid.UUID, credential []byte, signCount uint32) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE passkeys SET credential = $2, last_used_at = now() WHERE id = $1
		AND (COALESCE((credential->'authenticator'->>'signCount')::bigint, 0) < $3
			OR $3 = 0 AND COALESCE((credential->'authenticator'->>'signCount')::bigint, 0) = 0)`, id, credential, int64(signCount))
	if err != nil {
		return false, translate(err, "use passkey")
	}
	return tag.RowsAffected() == 1, nil
}

// DeletePasskey removes one of the user's passkeys.
func (s *MFAStore) DeletePasskey(ctx context.Context, userID, id uuid.UUID) error {
	return s.db.tx(ctx, "delete passkey", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM passkeys WHERE user_id = $1 AND id = $2`, userID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return task.ErrNotFound
		}
		return dropOrphanCodes(ctx, tx, userID)
	})
}

// CreateCeremony stores a WebAuthn ceremony.
func (s *MFAStore) CreateCeremony(ctx context.Context, c *task.Ceremony) error {
	var userID *uuid.UUID
	if c.UserID != uuid.Nil {
		userID = &c.UserID
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO webauthn_ceremonies (challenge_hash, kind, user_id, session, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, c.ChallengeHash, c.Kind, userID, c.Session, c.ExpiresAt)
	return translate(err, "create ceremony")
}

// TakeCeremony deletes and returns a live ceremony: one statement, so two
// racing answers to one challenge cannot both have it.
func (s *MFAStore) TakeCeremony(ctx context.Context, hash []byte, kind string) (*task.Ceremony, error) {
	c := task.Ceremony{ChallengeHash: hash, Kind: kind}
	var userID *uuid.UUID
	err := s.db.pool.QueryRow(ctx, `DELETE FROM webauthn_ceremonies WHERE challenge_hash = $1 AND kind = $2
		RETURNING user_id, session, expires_at`, hash, kind).Scan(&userID, &c.Session, &c.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && !c.ExpiresAt.After(time.Now()) {
		return nil, task.ErrNotFound
	}
	if err != nil {
		return nil, translate(err, "take ceremony")
	}
	if userID != nil {
		c.UserID = *userID
	}
	return &c, nil
}
