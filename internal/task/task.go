package task

import (
	"time"

	"github.com/google/uuid"
)

// Task is a to-do item owned by one user.
type Task struct {
	ID          uuid.UUID
	OwnerID     uuid.UUID
	Title       string
	Description string
	Completed   bool
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// TaskUpdate lists the fields a write changes; nil leaves a field alone.
type TaskUpdate struct {
	Title       *string
	Description *string
	Completed   *bool
	IfMatch     IfMatch
}

// IfMatch makes a write conditional on the stored version being one of
// the listed versions. Nil means unconditional; an empty non-nil list
// matches nothing.
type IfMatch []int64

// Ordering is a sort order of the task list.
type Ordering string

// The orderings the list accepts.
const (
	OrderCreatedAsc  Ordering = "created_at"
	OrderCreatedDesc Ordering = "-created_at"
	OrderTitleAsc    Ordering = "title"
	OrderTitleDesc   Ordering = "-title"
)

// Valid reports whether o is one of the accepted orderings.
func (o Ordering) Valid() bool {
	switch o {
	case OrderCreatedAsc, OrderCreatedDesc, OrderTitleAsc, OrderTitleDesc:
		return true
	}
	return false
}

// Descending reports whether o sorts from high to low.
func (o Ordering) Descending() bool { return len(o) > 0 && o[0] == '-' }

// TaskFilter selects and orders one page of an owner's tasks.
type TaskFilter struct {
	OwnerID   uuid.UUID
	Completed *bool
	Search    string
	Ordering  Ordering
	Limit     int
	Cursor    *Cursor
}
