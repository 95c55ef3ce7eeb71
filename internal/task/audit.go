package task

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// AuditEvent is one stored security event: what happened, to whom, from
// where and in which request. Detail holds the event's few extra facts
// (ids, flags, a policy name), never a credential.
type AuditEvent struct {
	ID        uuid.UUID
	Time      time.Time
	Event     string
	UserID    uuid.UUID // the user the event is about; uuid.Nil when none (an unknown username, an anonymous client)
	Username  string    // UserID's username when the event was stored
	ClientIP  string
	RequestID string
	TraceID   string // of an incoming W3C traceparent; empty when none
	Detail    map[string]any
}

// AuditFilter selects a page of the audit trail, newest first. Zero fields
// do not filter.
type AuditFilter struct {
	UserID   uuid.UUID
	Username string // matched case-insensitively, as logins match
	Event    string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	Limit    int
	Cursor   *Cursor // a TimeCursor of the event time
}

// AuditStore keeps the audit trail.
type AuditStore interface {
	// InsertAuditEvents stores a batch in one round trip.
	InsertAuditEvents(ctx context.Context, events []AuditEvent) error
	FindAuditEvents(ctx context.Context, f AuditFilter) (*Page[*AuditEvent], error)
	// PurgeAuditEvents deletes the events older than before.
	PurgeAuditEvents(ctx context.Context, before time.Time) (int64, error)
}
