package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acme/taskmanager/internal/task"
)

// AuditStore implements task.AuditStore.
type AuditStore struct{ db *DB }

// Audit returns the audit trail's store.
func (db *DB) Audit() *AuditStore { return &AuditStore{db: db} }

// InsertAuditEvents stores a batch in one statement, copying each user's
// username as it is now.
func (s *AuditStore) InsertAuditEvents(ctx context.Context, events []task.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	times := make([]time.Time, n)
	names := make([]string, n)
	users := make([]pgtype.UUID, n)
	ips := make([]string, n)
	requests := make([]string, n)
	traces := make([]string, n)
	details := make([]string, n)
	for i, e := range events {
		times[i], names[i], ips[i], requests[i], traces[i] = e.Time, e.Event, e.ClientIP, e.RequestID, e.TraceID
		users[i] = pgtype.UUID{Bytes: e.UserID, Valid: e.UserID != uuid.Nil}
		details[i] = "{}"
		if len(e.Detail) > 0 {
			raw, err := json.Marshal(e.Detail)
			if err != nil {
				return fmt.Errorf("postgres: audit detail of %s: %w", e.Event, err)
			}
			details[i] = string(raw)
		}
	}
	const q = `INSERT INTO audit_events (time, event, user_id, username, client_ip, request_id, trace_id, detail)
		SELECT e.time, e.event, e.user_id, u.username, e.client_ip, e.request_id, e.trace_id, e.detail::jsonb
		FROM unnest($1::timestamptz[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[])
			AS e(time, event, user_id, client_ip, request_id, trace_id, detail)
		LEFT JOIN users u ON u.id = e.user_id`
	_, err := s.db.pool.Exec(ctx, q, times, names, users, ips, requests, traces, details)
	return translate(err, "insert audit events")
}

// FindAuditEvents returns one page of the events f selects, newest first.
func (s *AuditStore) FindAuditEvents(ctx context.Context, f task.AuditFilter) (*task.Page[*task.AuditEvent], error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.UserID != uuid.Nil {
		where = append(where, "user_id = "+arg(f.UserID))
	}
	if f.Username != "" {
		where = append(where, "lower(username) = lower("+arg(f.Username)+")")
	}
	if f.Event != "" {
		where = append(where, "event = "+arg(f.Event))
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < "+arg(f.Until))
	}
	cmp, dir := "<", "DESC"
	if f.Cursor.Backwards() {
		cmp, dir = ">", "ASC"
	}
	if f.Cursor != nil {
		t, err := f.Cursor.Time()
		if err != nil {
			return nil, err
		}
		where = append(where, fmt.Sprintf("(time, id) %s (%s, %s)", cmp, arg(t), arg(f.Cursor.ID)))
	}
	q := `SELECT id, time, event, user_id, coalesce(username, ''), client_ip, request_id, trace_id, detail FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY time %s, id %s LIMIT %s", dir, dir, arg(f.Limit+1))
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "find audit events")
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*task.AuditEvent, error) {
		var e task.AuditEvent
		var user pgtype.UUID
		if err := r.Scan(&e.ID, &e.Time, &e.Event, &user, &e.Username, &e.ClientIP, &e.RequestID, &e.TraceID, &e.Detail); err != nil {
			return nil, err
		}
		if user.Valid {
			e.UserID = user.Bytes
		}
		return &e, nil
	})
	if err != nil {
		return nil, translate(err, "find audit events")
	}
	return task.NewPage(items, f.Limit, f.Cursor, func(e *task.AuditEvent) task.Cursor {
		return task.TimeCursor("", e.Time, e.ID)
	}), nil
}

// PurgeAuditEvents deletes the events older than before.
func (s *AuditStore) PurgeAuditEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.tx(ctx, "purge audit events", func(tx pgx.Tx) error {
		// A first purge after a long pause may take longer than a request's
		// time budget; the purge is not a request.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE time < $1`, before)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
