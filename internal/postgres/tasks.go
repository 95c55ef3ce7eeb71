package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	q := listQuery{owner: f.OwnerID, completed: f.Completed, col: "created_at", cmp: ">", dir: "ASC"}
	if f.Ordering == task.OrderTitleAsc || f.Ordering == task.OrderTitleDesc {
		q.col = "title"
	}
	// A backward page walks the ordering in reverse from its cursor and is
	// flipped back before it is returned.
	if f.Ordering.Descending() != f.Cursor.Backwards() {
		q.cmp, q.dir = "<", "DESC"
	}
	var from *position
	if c := f.Cursor; c != nil {
		from = &position{key: c.Key, id: c.ID}
		if q.col == "created_at" {
			t, err := c.Time()
			if err != nil {
				return nil, err
			}
			from.key = t
		}
	}

	var items []*task.Task
	var resume *task.Task
	var err error
	if f.Search == "" {
		items, err = s.list(ctx, s.db.pool, q, from, "", f.Limit+1)
	} else {
		err = s.db.searching(ctx, f.OwnerID, func() error {
			items, resume, err = s.search(ctx, q, from, "%"+escapeLike(f.Search)+"%", f.Limit+1)
			return err
		})
	}
	if err != nil {
		return nil, translate(err, "find tasks")
	}
	at := func(t *task.Task) task.Cursor {
		if q.col == "title" {
			return task.Cursor{Ordering: f.Ordering, Key: t.Title, ID: t.ID}
		}
		return task.TimeCursor(f.Ordering, t.CreatedAt, t.ID)
	}
	page := task.NewPage(items, f.Limit, f.Cursor, at)
	if resume != nil {
		page.ResumeAt(f.Cursor, at(resume))
	}
	return page, nil
}

// listQuery selects an owner's tasks in one ordering, (col, id) in
// direction dir; cmp is the comparison that moves along it.
type listQuery struct {
	owner         uuid.UUID
	completed     *bool
	col, cmp, dir string
}

// position is a place in a listQuery's ordering: a row's col and id.
type position struct {
	key any
	id  uuid.UUID
}

func (q *listQuery) positionOf(t *task.Task) *position {
	if q.col == "title" {
		return &position{key: t.Title, id: t.ID}
	}
	return &position{key: t.CreatedAt, id: t.ID}
}

// sqlArgs collects a statement's arguments.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// where returns the conditions selecting the owner's rows past from (all
// of them when from is nil), and extra.
func (q *listQuery) where(a *sqlArgs, from *position, extra string) string {
	w := []string{"owner_id = " + a.add(q.owner)}
	if q.completed != nil {
		w = append(w, "completed = "+a.add(*q.completed))
	}
	if from != nil {
		w = append(w, fmt.Sprintf("(%s, id) %s (%s, %s)", q.col, q.cmp, a.add(from.key), a.add(from.id)))
	}
	if extra != "" {
		w = append(w, extra)
	}
	return strings.Join(w, " AND ")
}

func (q *listQuery) order() string {
	return fmt.Sprintf("%s %s, id %s", q.col, q.dir, q.dir)
}

// list returns the first n rows past from in order; with a pattern, only
// rows whose title or description matches it (ILIKE), and then the planner
// chooses between the ordering's btree and the trigram index.
func (s *TaskStore) list(ctx context.Context, db querier, q listQuery, from *position, pattern string, n int) ([]*task.Task, error) {
	var a sqlArgs
	var match string
	if pattern != "" {
		p := a.add(pattern)
		match = fmt.Sprintf("(title ILIKE %s OR description ILIKE %s)", p, p)
	}
	sql := fmt.Sprintf(`SELECT %s FROM tasks WHERE %s ORDER BY %s LIMIT %s`,
		taskColumns, q.where(&a, from, match), q.order(), a.add(n))
	args := []any(a)
	if pattern != "" {
		// An unnamed statement is planned for its actual arguments; a cached
		// one could settle on a generic plan, the same for every pattern.
		args = append([]any{pgx.QueryExecModeExec}, args...)
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*task.Task, error) { return scanTask(r) })
}

// querier is the pool, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Search strategy. Walking the list in order costs about 3 µs a row
// (reading it and matching the pattern); a match fetched through the
// trigram index costs about eight times that (a random heap read and the
// recheck), as measured with BenchmarkSearchMillion's data.
const (
	searchFirstWindowPerRow = 50    // rows walked first, per row of the page
	searchIndexCost         = 8     // one match through the trigram index, in rows walked
	searchMaxWalk           = 8_000 // rows walked at most before the index answers the rest
	// searchStatementBudget bounds each statement of one search page. A
	// page that runs out of it stops short and says where to resume, so
	// no text, however unhelpful to the index, costs more than a few of
	// these: a text with no trigram, or with trigrams in every row but
	// the text in none, would otherwise read every one of the owner's rows.
	searchStatementBudget = 50 * time.Millisecond
)

// search returns the first n tasks past from whose title or description
// matches pattern (ILIKE), in order; resume is set when the page stopped
// short at its time budget, to the last row it walked.
//
// The planner cannot choose well between walking the list in order until
// n rows match (cheap for a common pattern) and collecting every match
// through the trigram index, then sorting them (cheap for a rare one): its
// statistics describe the whole table, not this owner's tasks, and a
// cached statement gets one generic plan for every pattern. Guessing rare
// for a common pattern builds a bitmap of most of the owner's rows and
// sorts it; guessing common for a rare one walks every row. So search
// measures instead. It walks windows of rows in order, each as long as
// all before it (a LIMIT in a subquery fences the index out), and from
// the share of walked rows that matched and the owner's task count it
// estimates what the index would cost for the rest. It turns to the index
// once that is less than the next window: walking never costs more than
// about what the index would have, and a page of a common pattern never
// touches the index.
func (s *TaskStore) search(ctx context.Context, q listQuery, from *position, pattern string, n int) (items []*task.Task, resume *task.Task, err error) {
	tx, err := s.db.pool.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Nothing is written: rolling back also ends a transaction a statement
	// over its budget aborted.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	budget := s.db.searchBudget
	if s.db.queryTimeout > 0 {
		budget = min(budget, s.db.queryTimeout)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, strconv.FormatInt(budget.Milliseconds(), 10)); err != nil {
		return nil, nil, err
	}
	// stopped reports a statement cut by the budget after some progress:
	// the page ends there, with what it found.
	stopped := func(err error, walkedTo *task.Task) bool {
		var pgErr *pgconn.PgError
		return walkedTo != nil && ctx.Err() == nil && errors.As(err, &pgErr) && pgErr.Code == "57014"
	}
	window, walked := searchFirstWindowPerRow*n, 0
	var walkedTo *task.Task
	for {
		hits, last, owned, err := s.window(ctx, tx, q, from, pattern, window, n-len(items))
		if stopped(err, walkedTo) {
			return items, walkedTo, nil
		}
		if err != nil {
			return nil, nil, err
		}
		items = append(items, hits...)
		walked += window
		if len(items) >= n || last == nil {
			return items, nil, nil
		}
		walkedTo, from = last, q.positionOf(last)
		density := (float64(len(items)) + 0.5) / float64(walked)
		if searchIndexCost*density*float64(owned) <= float64(walked) || walked >= searchMaxWalk {
			rest, err := s.list(ctx, tx, q, from, pattern, n-len(items))
			if stopped(err, walkedTo) {
				return items, walkedTo, nil
			}
			return append(items, rest...), nil, err
		}
		window = min(walked, searchMaxWalk-walked)
	}
}

// window walks the next size rows past from in order and returns the
// first n of them that match pattern; last is the window's last row when
// the window was full (nil when the list ended within it), and owned the
// owner's task count.
func (s *TaskStore) window(ctx context.Context, db querier, q listQuery, from *position, pattern string, size, n int) (hits []*task.Task, last *task.Task, owned int64, err error) {
	var a sqlArgs
	p, owner, sz := a.add(pattern), a.add(q.owner), a.add(size)
	sql := fmt.Sprintf(`SELECT %s, hit, pos, (SELECT task_count FROM users WHERE id = %s) FROM (
			SELECT %s, (title ILIKE %s OR description ILIKE %s) AS hit, row_number() OVER (ORDER BY %s) AS pos
			FROM tasks WHERE %s ORDER BY %s LIMIT %s) w
		WHERE hit OR pos = %s ORDER BY %s LIMIT %s`,
		taskColumns, owner, taskColumns, p, p, q.order(), q.where(&a, from, ""), q.order(), sz, sz, q.order(), a.add(n+1))
	rows, err := db.Query(ctx, sql, a...)
	if err != nil {
		return nil, nil, 0, err
	}
	var t task.Task
	var hit bool
	var pos int
	_, err = pgx.ForEachRow(rows, []any{&t.ID, &t.OwnerID, &t.Title, &t.Description, &t.Completed, &t.Version,
		&t.CreatedAt, &t.UpdatedAt, &hit, &pos, &owned}, func() error {
		row := t
		if hit && len(hits) < n {
			hits = append(hits, &row)
		}
		if pos == size {
			last = &row
		}
		return nil
	})
	return hits, last, owned, err
}

// findPage runs base, a query whose $1 is userID, as one keyset page newest
// first (created_at DESC, id DESC) from cur, scanning each row with scan;
// prefix qualifies the columns and at reads them back from a row for the
// page's cursors. A backward page runs oldest first and task.NewPage flips
// it. what names the query in its errors.
func findPage[T any](ctx context.Context, db *DB, what, base, prefix string, userID uuid.UUID, limit int, cur *task.Cursor,
	scan func(pgx.Row) (T, error), at func(T) (time.Time, uuid.UUID)) (*task.Page[T], error) {
	cmp, dir := "<", "DESC"
	if cur.Backwards() {
		cmp, dir = ">", "ASC"
	}
	args := []any{userID, limit + 1}
	if cur != nil {
		t, err := cur.Time()
		if err != nil {
			return nil, err
		}
		base += fmt.Sprintf(" AND (%screated_at, %sid) %s ($3, $4)", prefix, prefix, cmp)
		args = append(args, t, cur.ID)
	}
	q := fmt.Sprintf("%s ORDER BY %screated_at %s, %sid %s LIMIT $2", base, prefix, dir, prefix, dir)
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, translate(err, what)
	}
	return task.NewPage(items, limit, cur, func(x T) task.Cursor {
		t, id := at(x)
		return task.TimeCursor("", t, id)
	}), nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// CreateTask inserts t for t.OwnerID and fills in its generated fields.
// ErrQuotaExceeded when the owner already holds the most tasks allowed.
func (s *TaskStore) CreateTask(ctx context.Context, t *task.Task) error {
	return translate(s.insert(ctx, s.db.pool, t), "create task")
}

// rowQuerier is the pool, or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *TaskStore) insert(ctx context.Context, db rowQuerier, t *task.Task) error {
	// The owner's row lock serialises the owner's inserts and deletes, and a
	// waiting insert re-reads task_count (kept by the triggers of migration
	// 0005) once it has the lock, so concurrent inserts cannot overshoot.
	const q = `INSERT INTO tasks (owner_id, title, description, completed)
		SELECT u.id, $2, $3, $4 FROM users u WHERE u.id = $1 AND ($5 = 0 OR u.task_count < $5) FOR NO KEY UPDATE
		RETURNING id, version, created_at, updated_at`
	err := db.QueryRow(ctx, q, t.OwnerID, t.Title, t.Description, t.Completed, s.db.maxTasks).
		Scan(&t.ID, &t.Version, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, t.OwnerID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("postgres: create task: owner %s does not exist", t.OwnerID)
		}
		return task.ErrQuotaExceeded
	}
	return err
}

// CreateTaskOnce implements task.TaskStore. A transaction-scoped advisory
// lock on (owner, key) holds the key while the first request runs, on
// every instance sharing the database, and ends with the transaction, so
// a request that dies midway leaves neither a task nor a held key. The
// lock is tried, not awaited: a repeat meanwhile is refused at once.
func (s *TaskStore) CreateTaskOnce(ctx context.Context, t *task.Task, key task.IdempotencyKey, render func(*task.Task) (task.Reply, error)) (*task.Reply, bool, error) {
	var out task.Reply
	var replayed bool
	err := s.db.tx(ctx, "create task once", func(tx pgx.Tx) error {
		var held bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, key.LockID(t.OwnerID)).Scan(&held); err != nil {
			return err
		}
		if !held {
			return task.ErrIdempotencyInProgress
		}
		// A statement of its own, after the lock: its snapshot then sees
		// the answer of a first request that committed while this waited.
		var fp []byte
		err := tx.QueryRow(ctx, `SELECT fingerprint, status, location, etag, body FROM idempotency_keys
			WHERE user_id = $1 AND key = $2 AND expires_at > now()`, t.OwnerID, key.Key).
			Scan(&fp, &out.Status, &out.Location, &out.ETag, &out.Body)
		switch {
		case err == nil && !bytes.Equal(fp, key.Fingerprint[:]):
			return task.ErrIdempotencyKeyReused
		case err == nil:
			replayed = true
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if err := s.insert(ctx, tx, t); err != nil {
			return err
		}
		if out, err = render(t); err != nil {
			return err
		}
		// An expired row the purge has not reached yet is replaced.
		_, err = tx.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, fingerprint, status, location, etag, body, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
			ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
				location = EXCLUDED.location, etag = EXCLUDED.etag, body = EXCLUDED.body,
				created_at = now(), expires_at = EXCLUDED.expires_at`,
			t.OwnerID, key.Key, key.Fingerprint[:], out.Status, out.Location, out.ETag, out.Body, task.IdempotencyTTL.Seconds())
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return &out, replayed, nil
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

// searching runs fn, a search by owner, when it may. A search costs up to
// its time budget, a page of the list a fraction of a millisecond: one
// owner's searches run one at a time, so however many one user sends at
// once they hold one connection, and all owners' searches together hold at
// most half the pool, so plain requests always find a connection. Waiting
// for either lasts at most the time budget; then the search is unavailable.
func (db *DB) searching(ctx context.Context, owner uuid.UUID, fn func() error) error {
	if db.queryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, db.queryTimeout)
		defer cancel()
	}
	leave, err := db.searches.enter(ctx, owner)
	if err != nil {
		return err
	}
	defer leave()
	select {
	case db.searchSlots <- struct{}{}:
		defer func() { <-db.searchSlots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	return fn()
}

// turns lets each key through one at a time.
type turns struct {
	mu   sync.Mutex
	keys map[uuid.UUID]*turn
}

type turn struct {
	held    chan struct{} // full while the key's turn is taken
	waiting int           // callers holding or waiting for the turn
}

// enter waits for key's turn, as long as ctx lets it, and returns the
// function that ends it.
func (ts *turns) enter(ctx context.Context, key uuid.UUID) (leave func(), err error) {
	ts.mu.Lock()
	if ts.keys == nil {
		ts.keys = make(map[uuid.UUID]*turn)
	}
	t := ts.keys[key]
	if t == nil {
		t = &turn{held: make(chan struct{}, 1)}
		ts.keys[key] = t
	}
	t.waiting++
	ts.mu.Unlock()
	done := func() {
		ts.mu.Lock()
		if t.waiting--; t.waiting == 0 {
			delete(ts.keys, key)
		}
		ts.mu.Unlock()
	}

	select {
	case t.held <- struct{}{}:
		return func() { <-t.held; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
