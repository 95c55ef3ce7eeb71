package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/taskmanager/internal/task"
)

// UserStore implements task.UserStore.
type UserStore struct{ db *DB }

// Users returns the user store.
func (db *DB) Users() *UserStore { return &UserStore{db: db} }

const userColumns = `id, username, email, password_hash, is_admin, is_active, date_joined`

func scanUser(row pgx.Row) (*task.User, error) {
	var u task.User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.IsAdmin, &u.IsActive, &u.DateJoined)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *UserStore) findOne(ctx context.Context, q string, arg any) (*task.User, error) {
	u, err := scanUser(s.db.pool.QueryRow(ctx, q, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrNotFound
	}
	return u, translate(err, "find user")
}

// FindUserByID returns the user with id.
func (s *UserStore) FindUserByID(ctx context.Context, id uuid.UUID) (*task.User, error) {
	return s.findOne(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// FindUserByUsername returns the user whose username matches, ignoring case.
func (s *UserStore) FindUserByUsername(ctx context.Context, username string) (*task.User, error) {
	return s.findOne(ctx, `SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1)`, username)
}

// FindUsers returns one page of every user, oldest first.
func (s *UserStore) FindUsers(ctx context.Context, limit int, cur *task.Cursor) (*task.Page[*task.User], error) {
	cmp, dir := ">", "ASC"
	if cur.Backwards() {
		cmp, dir = "<", "DESC"
	}
	args := []any{limit + 1}
	where := "TRUE"
	if cur != nil {
		t, err := cur.Time()
		if err != nil {
			return nil, err
		}
		where = "(date_joined, id) " + cmp + " ($2, $3)"
		args = append(args, t, cur.ID)
	}
	q := `SELECT ` + userColumns + ` FROM users WHERE ` + where +
		` ORDER BY date_joined ` + dir + `, id ` + dir + ` LIMIT $1`
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "find users")
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*task.User, error) { return scanUser(r) })
	if err != nil {
		return nil, translate(err, "find users")
	}
	return task.NewPage(users, limit, cur, func(u *task.User) task.Cursor {
		return task.TimeCursor("", u.DateJoined, u.ID)
	}), nil
}

// CreateUser inserts u and fills in its generated fields.
func (s *UserStore) CreateUser(ctx context.Context, u *task.User) error {
	const q = `INSERT INTO users (username, email, password_hash, is_admin) VALUES ($1, $2, $3, $4)
		RETURNING id, is_active, date_joined`
	err := s.db.pool.QueryRow(ctx, q, u.Username, u.Email, u.PasswordHash, u.IsAdmin).Scan(&u.ID, &u.IsActive, &u.DateJoined)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return task.FieldError("username", "A user with that username already exists.")
	}
	return translate(err, "create user")
}

// adminChangeLock is the advisory lock key that serialises UpdateUser calls,
// so the check that an active administrator remains sees every earlier
// change. Any constant unique among the application's advisory locks will do.
const adminChangeLock = 0x746d61646d696e // "tmadmin"

// UpdateUser changes an account's flags on behalf of actorID, who must be
// an active administrator when the change is made. A change that would
// leave no active administrator is a conflict. Deactivating revokes the
// user's sessions and API keys in the same transaction, so nothing of
// theirs keeps working once it commits.
func (s *UserStore) UpdateUser(ctx context.Context, actorID, id uuid.UUID, upd task.UserUpdate) (*task.User, error) {
	var u *task.User
	err := s.db.revoking(ctx, "update user", func(tx pgx.Tx, revoke revokeFunc) error {
		// Without the lock, two administrators demoting each other would
		// each still see the other as active and both commit. Every later
		// statement reads the state the previous holder committed.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(adminChangeLock)); err != nil {
			return err
		}
		var allowed bool
		err := tx.QueryRow(ctx, `SELECT is_admin AND is_active FROM users WHERE id = $1`, actorID).Scan(&allowed)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !allowed {
			return task.ErrForbidden
		}
		if err != nil {
			return err
		}
		const q = `UPDATE users SET is_active = COALESCE($2, is_active), is_admin = COALESCE($3, is_admin)
			WHERE id = $1 RETURNING ` + userColumns
		u, err = scanUser(tx.QueryRow(ctx, q, id, upd.IsActive, upd.IsAdmin))
		if errors.Is(err, pgx.ErrNoRows) {
			return task.ErrNotFound
		}
		if err != nil {
			return err
		}
		var adminLeft bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE is_admin AND is_active)`).Scan(&adminLeft); err != nil {
			return err
		}
		if !adminLeft {
			return task.Errorf(task.ECONFLICT, "At least one active administrator must remain.")
		}
		if u.IsActive {
			return nil
		}
		if _, err := revoke(`user_id = $1`, id); err != nil {
			return err
		}
		return revokeKeysOf(ctx, tx, id)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetPassword stores a new password hash and revokes every other session,
// and every API key when revokeKeys is set, in one transaction.
func (s *UserStore) SetPassword(ctx context.Context, id uuid.UUID, hash string, keep uuid.UUID, revokeKeys bool) error {
	return s.db.revoking(ctx, "set password", func(tx pgx.Tx, revoke revokeFunc) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, id, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return task.ErrNotFound
		}
		if _, err := revoke(`user_id = $1 AND id <> $2`, id, keep); err != nil {
			return err
		}
		if revokeKeys {
			return revokeKeysOf(ctx, tx, id)
		}
		return nil
	})
}
