package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/task"
)

// TaskStore implements task.TaskStore. Every statement is scoped by
// owner_id, so no caller can reach another user's row.
type TaskStore struct{ db *DB }

// Tasks returns the task store.
func (db *DB) Tasks() *TaskStore { return &TaskStore{db: db} }

const taskColumns = `id, owner_id, title, description, completed, version, created_at, updated_at`

func scanTask(row pgx.Row) (*task.Task, error) {
	var t task.Task
	err := row.Scan(&t.ID, &t.OwnerID, &t.Title, &t.Description, &t.Completed, &t.Version, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// FindTaskByID returns one of the owner's tasks.
func (s *TaskStore) FindTaskByID(ctx context.Context, ownerID, id uuid.UUID) (*task.Task, error) {
	const q = `SELECT ` + taskColumns + ` FROM tasks WHERE id = $1 AND owner_id = $2`
	t, err := scanTask(s.db.pool.QueryRow(ctx, q, id, ownerID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrNotFound
	}
	return t, translate(err, "find task")
}

// FindTasks returns one keyset page of the owner's tasks.
func (s *TaskStore) FindTasks(ctx context.Context, f task.TaskFilter) (*task.Page[*task.Task], error) {
	col := "created_at"
	if f.Ordering == task.OrderTitleAsc || f.Ordering == task.OrderTitleDesc {
		col = "title"
	}
	backward := f.Cursor != nil && f.Cursor.Backward
	// A backward page walks the ordering in reverse from its cursor and is
	// flipped back before it is returned.
	desc := f.Ordering.Descending() != backward
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}

	where := []string{"owner_id = $1"}
	args := []any{f.OwnerID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Completed != nil {
		where = append(where, "completed = "+arg(*f.Completed))
	}
	if f.Search != "" {
		p := arg("%" + escapeLike(f.Search) + "%")
		where = append(where, fmt.Sprintf("(title ILIKE %s OR description ILIKE %s)", p, p))
	}
	if c := f.Cursor; c != nil {
		var key any = c.Key
		if col == "created_at" {
			t, err := time.Parse(time.RFC3339Nano, c.Key)
			if err != nil {
				return nil, task.Errorf(task.EBADREQUEST, "Invalid cursor.")
			}
			key = t
		}
		where = append(where, fmt.Sprintf("(%s, id) %s (%s, %s)", col, cmp, arg(key), arg(c.ID)))
	}
	q := fmt.Sprintf(`SELECT %s FROM tasks WHERE %s ORDER BY %s %s, id %s LIMIT %s`,
		taskColumns, strings.Join(where, " AND "), col, dir, dir, arg(f.Limit+1))

	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "find tasks")
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*task.Task, error) { return scanTask(r) })
	if err != nil {
		return nil, translate(err, "find tasks")
	}
	return paginate(items, f.Limit, f.Cursor, f.Ordering, func(t *task.Task) task.Cursor {
		key := t.CreatedAt.UTC().Format(time.RFC3339Nano)
		if col == "title" {
			key = t.Title
		}
		return task.Cursor{Ordering: f.Ordering, Key: key, ID: t.ID}
	}), nil
}

// paginate trims the extra row fetched to detect a further page, restores
// the order of a backward page, and sets the neighbours' cursors.
func paginate[T any](items []T, limit int, cur *task.Cursor, o task.Ordering, at func(T) task.Cursor) *task.Page[T] {
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	backward := cur != nil && cur.Backward
	if backward {
		slices.Reverse(items)
	}
	p := &task.Page[T]{Items: items}
	if len(items) == 0 {
		return p
	}
	first, last := at(items[0]), at(items[len(items)-1])
	first.Backward = true
	if backward {
		p.Next = &last
		if more {
			p.Previous = &first
		}
	} else {
		if more {
			p.Next = &last
		}
		if cur != nil {
			p.Previous = &first
		}
	}
	return p
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// CreateTask inserts t for t.OwnerID and fills in its generated fields.
func (s *TaskStore) CreateTask(ctx context.Context, t *task.Task) error {
	const q = `INSERT INTO tasks (owner_id, title, description, completed) VALUES ($1, $2, $3, $4)
		RETURNING id, version, created_at, updated_at`
	err := s.db.pool.QueryRow(ctx, q, t.OwnerID, t.Title, t.Description, t.Completed).
		Scan(&t.ID, &t.Version, &t.CreatedAt, &t.UpdatedAt)
	return translate(err, "create task")
}

// UpdateTask changes the given fields of one of the owner's tasks.
func (s *TaskStore) UpdateTask(ctx context.Context, ownerID, id uuid.UUID, upd task.TaskUpdate) (*task.Task, error) {
	const q = `UPDATE tasks SET
			title = COALESCE($3, title),
			description = COALESCE($4, description),
			completed = COALESCE($5, completed),
			version = version + 1,
			updated_at = clock_timestamp()
		WHERE id = $1 AND owner_id = $2 AND ($6::bigint[] IS NULL OR version = ANY($6))
		RETURNING ` + taskColumns
	t, err := scanTask(s.db.pool.QueryRow(ctx, q, id, ownerID, upd.Title, upd.Description, upd.Completed, []int64(upd.IfMatch)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.missOrMismatch(ctx, ownerID, id, upd.IfMatch)
	}
	return t, translate(err, "update task")
}

// DeleteTask removes one of the owner's tasks.
func (s *TaskStore) DeleteTask(ctx context.Context, ownerID, id uuid.UUID, ifMatch task.IfMatch) error {
	const q = `DELETE FROM tasks WHERE id = $1 AND owner_id = $2 AND ($3::bigint[] IS NULL OR version = ANY($3))`
	tag, err := s.db.pool.Exec(ctx, q, id, ownerID, []int64(ifMatch))
	if err != nil {
		return translate(err, "delete task")
	}
	if tag.RowsAffected() == 0 {
		return s.missOrMismatch(ctx, ownerID, id, ifMatch)
	}
	return nil
}

// missOrMismatch tells a conditional write that matched nothing apart: the
// task is gone (or never was the owner's), or its version moved on.
func (s *TaskStore) missOrMismatch(ctx context.Context, ownerID, id uuid.UUID, ifMatch task.IfMatch) error {
	if ifMatch == nil {
		return task.ErrNotFound
	}
	if _, err := s.FindTaskByID(ctx, ownerID, id); err != nil {
		return err
	}
	return task.ErrPrecondition
}
