package postgres_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

func ptr[T any](v T) *T { return &v }

func findTask(tb testing.TB, db *postgres.DB, owner, id uuid.UUID) *task.Task {
	tb.Helper()
	t, err := db.Tasks().FindTaskByID(tb.Context(), owner, id)
	if err != nil {
		tb.Fatalf("FindTaskByID: %v", err)
	}
	return t
}

// sameTask fails unless got still holds what want held.
func sameTask(tb testing.TB, got, want *task.Task) {
	tb.Helper()
	if got.Title != want.Title || got.Description != want.Description || got.Completed != want.Completed ||
		got.Version != want.Version || !got.UpdatedAt.Equal(want.UpdatedAt) || !got.CreatedAt.Equal(want.CreatedAt) {
		tb.Fatalf("task = %+v, want unchanged %+v", got, want)
	}
}

func TestCreateTask(t *testing.T) {
	db, _ := pgtest.Open(t)
	owner := newUser(t, db)

	before := time.Now()
	created := &task.Task{OwnerID: owner.ID, Title: "Buy milk", Description: "two litres", Completed: true}
	if err := db.Tasks().CreateTask(t.Context(), created); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	after := time.Now()

	if created.ID == uuid.Nil {
		t.Fatalf("ID = %v, want a generated id", created.ID)
	}
	if created.Version != 1 {
		t.Fatalf("Version = %d, want 1", created.Version)
	}
	for name, ts := range map[string]time.Time{"CreatedAt": created.CreatedAt, "UpdatedAt": created.UpdatedAt} {
		if ts.Before(before.Add(-time.Second)) || ts.After(after.Add(time.Second)) {
			t.Fatalf("%s = %v, want between %v and %v", name, ts, before, after)
		}
	}
	got := findTask(t, db, owner.ID, created.ID)
	if got.OwnerID != owner.ID {
		t.Fatalf("OwnerID = %v, want %v", got.OwnerID, owner.ID)
	}
	sameTask(t, got, created)

	// A second task gets a different id.
	other := newTask(t, db, owner.ID, "Buy bread", "")
	if other.ID == created.ID {
		t.Fatalf("second task id = %v, same as the first", other.ID)
	}
}

func TestTaskOwnership(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	alice, bob := newUser(t, db), newUser(t, db)
	tk := newTask(t, db, alice.ID, "Alice only", "private")

	_, err := db.Tasks().FindTaskByID(ctx, bob.ID, tk.ID)
	wantErr(t, "FindTaskByID by another owner", err, task.ErrNotFound)
	wantCode(t, "FindTaskByID by another owner", err, task.ENOTFOUND)

	tests := []struct {
		name string
		call func() error
	}{
		{"update", func() error {
			_, err := db.Tasks().UpdateTask(ctx, bob.ID, tk.ID, task.TaskUpdate{Title: ptr("Stolen"), Completed: ptr(true)})
			return err
		}},
		{"update if-match current", func() error {
			_, err := db.Tasks().UpdateTask(ctx, bob.ID, tk.ID, task.TaskUpdate{Title: ptr("Stolen"), IfMatch: task.IfMatch{tk.Version}})
			return err
		}},
		{"delete", func() error { return db.Tasks().DeleteTask(ctx, bob.ID, tk.ID, nil) }},
		{"delete if-match current", func() error { return db.Tasks().DeleteTask(ctx, bob.ID, tk.ID, task.IfMatch{tk.Version}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantErr(t, tt.name, err, task.ErrNotFound)
			sameTask(t, findTask(t, db, alice.ID, tk.ID), tk)
		})
	}

	// Bob's own list does not show Alice's task.
	page, err := db.Tasks().FindTasks(ctx, task.TaskFilter{OwnerID: bob.ID, Ordering: task.OrderCreatedDesc, Limit: 10})
	if err != nil {
		t.Fatalf("FindTasks: %v", err)
	}
	if len(page.Items) != 0 {
		t.Fatalf("bob sees %d tasks, want 0", len(page.Items))
	}
}

func TestUpdateTask(t *testing.T) {
	db, _ := pgtest.Open(t)
	owner := newUser(t, db)
	tk := newTask(t, db, owner.ID, "Old title", "keep me")

	got, err := db.Tasks().UpdateTask(t.Context(), owner.ID, tk.ID, task.TaskUpdate{Title: ptr("New title"), Completed: ptr(true)})
	if err != nil {
		t.Fatalf("UpdateTask: %v", err)
	}
	if got.Title != "New title" || !got.Completed {
		t.Fatalf("title, completed = %q, %v, want %q, true", got.Title, got.Completed, "New title")
	}
	if got.Description != "keep me" {
		t.Fatalf("Description = %q, want unchanged %q", got.Description, "keep me")
	}
	if got.Version != tk.Version+1 {
		t.Fatalf("Version = %d, want %d", got.Version, tk.Version+1)
	}
	if !got.UpdatedAt.After(tk.UpdatedAt) {
		t.Fatalf("UpdatedAt = %v, want after %v", got.UpdatedAt, tk.UpdatedAt)
	}
	if !got.CreatedAt.Equal(tk.CreatedAt) {
		t.Fatalf("CreatedAt = %v, want unchanged %v", got.CreatedAt, tk.CreatedAt)
	}
	sameTask(t, findTask(t, db, owner.ID, tk.ID), got)

	// Every write bumps the version, even one that changes nothing.
	again, err := db.Tasks().UpdateTask(t.Context(), owner.ID, tk.ID, task.TaskUpdate{})
	if err != nil {
		t.Fatalf("UpdateTask (empty): %v", err)
	}
	if again.Version != got.Version+1 {
		t.Fatalf("Version = %d, want %d", again.Version, got.Version+1)
	}

	_, err = db.Tasks().UpdateTask(t.Context(), owner.ID, uuid.New(), task.TaskUpdate{Title: ptr("Nobody")})
	wantErr(t, "UpdateTask of a missing task", err, task.ErrNotFound)
}

func TestUpdateTaskIfMatch(t *testing.T) {
	tests := []struct {
		name    string
		ifMatch func(current int64) task.IfMatch
		wantErr error
	}{
		{"current version", func(v int64) task.IfMatch { return task.IfMatch{v} }, nil},
		{"one of several", func(v int64) task.IfMatch { return task.IfMatch{v + 7, v} }, nil},
		{"stale version", func(v int64) task.IfMatch { return task.IfMatch{v - 1} }, task.ErrPrecondition},
		{"future version", func(v int64) task.IfMatch { return task.IfMatch{v + 1} }, task.ErrPrecondition},
		{"empty non-nil", func(int64) task.IfMatch { return task.IfMatch{} }, task.ErrPrecondition},
	}
	db, _ := pgtest.Open(t)
	owner := newUser(t, db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := newTask(t, db, owner.ID, "Conditional", "")
			// Move to version 2 so that a stale version exists.
			tk, err := db.Tasks().UpdateTask(t.Context(), owner.ID, tk.ID, task.TaskUpdate{Description: ptr("v2")})
			if err != nil {
				t.Fatalf("UpdateTask: %v", err)
			}

			got, err := db.Tasks().UpdateTask(t.Context(), owner.ID, tk.ID,
				task.TaskUpdate{Title: ptr("Changed"), IfMatch: tt.ifMatch(tk.Version)})
			if tt.wantErr != nil {
				wantErr(t, "UpdateTask", err, tt.wantErr)
				wantCode(t, "UpdateTask", err, task.EPRECONDITION)
				sameTask(t, findTask(t, db, owner.ID, tk.ID), tk)
				return
			}
			if err != nil {
				t.Fatalf("UpdateTask: %v", err)
			}
			if got.Title != "Changed" || got.Version != tk.Version+1 {
				t.Fatalf("title, version = %q, %d, want %q, %d", got.Title, got.Version, "Changed", tk.Version+1)
			}
		})
	}

	t.Run("missing task", func(t *testing.T) {
		_, err := db.Tasks().UpdateTask(t.Context(), owner.ID, uuid.New(), task.TaskUpdate{Title: ptr("X y z"), IfMatch: task.IfMatch{1}})
		wantErr(t, "UpdateTask", err, task.ErrNotFound)
	})
}

func TestDeleteTask(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	owner := newUser(t, db)

	t.Run("stale if-match keeps the task", func(t *testing.T) {
		tk := newTask(t, db, owner.ID, "Keep me", "")
		wantErr(t, "DeleteTask", db.Tasks().DeleteTask(ctx, owner.ID, tk.ID, task.IfMatch{tk.Version + 1}), task.ErrPrecondition)
		wantErr(t, "DeleteTask", db.Tasks().DeleteTask(ctx, owner.ID, tk.ID, task.IfMatch{}), task.ErrPrecondition)
		sameTask(t, findTask(t, db, owner.ID, tk.ID), tk)
	})
	t.Run("current if-match deletes", func(t *testing.T) {
		tk := newTask(t, db, owner.ID, "Delete me", "")
		if err := db.Tasks().DeleteTask(ctx, owner.ID, tk.ID, task.IfMatch{tk.Version}); err != nil {
			t.Fatalf("DeleteTask: %v", err)
		}
		_, err := db.Tasks().FindTaskByID(ctx, owner.ID, tk.ID)
		wantErr(t, "FindTaskByID after delete", err, task.ErrNotFound)
		wantErr(t, "DeleteTask again", db.Tasks().DeleteTask(ctx, owner.ID, tk.ID, nil), task.ErrNotFound)
		wantErr(t, "DeleteTask again with if-match", db.Tasks().DeleteTask(ctx, owner.ID, tk.ID, task.IfMatch{tk.Version}), task.ErrNotFound)
	})
}

// walk follows Next from the first page and returns every page.
func walk(tb testing.TB, db *postgres.DB, f task.TaskFilter) []*task.Page[*task.Task] {
	tb.Helper()
	var pages []*task.Page[*task.Task]
	f.Cursor = nil
	for {
		p, err := db.Tasks().FindTasks(tb.Context(), f)
		if err != nil {
			tb.Fatalf("FindTasks(page %d): %v", len(pages)+1, err)
		}
		pages = append(pages, p)
		if p.Next == nil {
			return pages
		}
		if len(pages) > 100 {
			tb.Fatalf("more than 100 pages: Next never ends")
		}
		f.Cursor = p.Next
	}
}

func pageSizes[T any](pages []*task.Page[T]) []int {
	var n []int
	for _, p := range pages {
		n = append(n, len(p.Items))
	}
	return n
}

func byCreated(a, b *task.Task) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

func byTitle(a, b *task.Task) int {
	if c := strings.Compare(a.Title, b.Title); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

func reversed(cmp func(a, b *task.Task) int) func(a, b *task.Task) int {
	return func(a, b *task.Task) int { return cmp(b, a) }
}

func TestFindTasksPagination(t *testing.T) {
	db, _ := pgtest.Open(t)
	owner, other := newUser(t, db), newUser(t, db)
	var all []*task.Task
	for i := range 25 {
		// Seven titles for 25 tasks: title orderings must break ties by id.
		all = append(all, newTask(t, db, owner.ID, fmt.Sprintf("Title %c", 'A'+i%7), ""))
	}
	for range 5 {
		newTask(t, db, other.ID, "Title A", "")
	}

	tests := []struct {
		ordering task.Ordering
		cmp      func(a, b *task.Task) int
	}{
		{task.OrderCreatedDesc, reversed(byCreated)},
		{task.OrderCreatedAsc, byCreated},
		{task.OrderTitleAsc, byTitle},
		{task.OrderTitleDesc, reversed(byTitle)},
	}
	for _, tt := range tests {
		t.Run(string(tt.ordering), func(t *testing.T) {
			want := ids(slices.SortedFunc(slices.Values(all), tt.cmp))
			f := task.TaskFilter{OwnerID: owner.ID, Ordering: tt.ordering, Limit: 10}
			pages := walk(t, db, f)

			if got := pageSizes(pages); !slices.Equal(got, []int{10, 10, 5}) {
				t.Fatalf("page sizes = %v, want [10 10 5]", got)
			}
			var got []uuid.UUID
			for _, p := range pages {
				got = append(got, ids(p.Items)...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("walked ids = %v, want %v", got, want)
			}
			if pages[0].Previous != nil {
				t.Fatalf("first page Previous = %+v, want nil", pages[0].Previous)
			}
			if pages[2].Previous == nil {
				t.Fatalf("last page Previous = nil, want a cursor")
			}

			// Back from page 3 gives page 2, and back again page 1.
			f.Cursor = pages[2].Previous
			back2, err := db.Tasks().FindTasks(t.Context(), f)
			if err != nil {
				t.Fatalf("FindTasks(previous of page 3): %v", err)
			}
			if got, want := ids(back2.Items), ids(pages[1].Items); !slices.Equal(got, want) {
				t.Fatalf("previous of page 3 = %v, want page 2 %v", got, want)
			}
			if back2.Next == nil || back2.Previous == nil {
				t.Fatalf("page 2 reached backwards: Next = %v, Previous = %v, want both set", back2.Next, back2.Previous)
			}
			f.Cursor = back2.Previous
			back1, err := db.Tasks().FindTasks(t.Context(), f)
			if err != nil {
				t.Fatalf("FindTasks(previous of page 2): %v", err)
			}
			if got, want := ids(back1.Items), ids(pages[0].Items); !slices.Equal(got, want) {
				t.Fatalf("previous of page 2 = %v, want page 1 %v", got, want)
			}
			if back1.Previous != nil {
				t.Fatalf("page 1 reached backwards: Previous = %+v, want nil", back1.Previous)
			}

			// Forward again from the page reached backwards gives page 3.
			f.Cursor = back2.Next
			fwd3, err := db.Tasks().FindTasks(t.Context(), f)
			if err != nil {
				t.Fatalf("FindTasks(next of page 2): %v", err)
			}
			if got, want := ids(fwd3.Items), ids(pages[2].Items); !slices.Equal(got, want) {
				t.Fatalf("next of page 2 = %v, want page 3 %v", got, want)
			}
		})
	}

	t.Run("bad cursor", func(t *testing.T) {
		f := task.TaskFilter{OwnerID: owner.ID, Ordering: task.OrderCreatedDesc, Limit: 10,
			Cursor: &task.Cursor{Ordering: task.OrderCreatedDesc, Key: "Title A", ID: all[0].ID}}
		_, err := db.Tasks().FindTasks(t.Context(), f)
		wantCode(t, "FindTasks with a title key on created_at", err, task.EBADREQUEST)
	})
}

func TestFindTasksCompleted(t *testing.T) {
	db, _ := pgtest.Open(t)
	owner := newUser(t, db)
	var done, open []*task.Task
	for i := range 14 {
		tk := newTask(t, db, owner.ID, fmt.Sprintf("Task %d", i), "")
		if i%3 == 0 {
			var err error
			if tk, err = db.Tasks().UpdateTask(t.Context(), owner.ID, tk.ID, task.TaskUpdate{Completed: ptr(true)}); err != nil {
				t.Fatalf("UpdateTask: %v", err)
			}
			done = append(done, tk)
		} else {
			open = append(open, tk)
		}
	}

	tests := []struct {
		completed bool
		want      []*task.Task
		sizes     []int
	}{
		{true, done, []int{4, 1}},
		{false, open, []int{4, 4, 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.completed), func(t *testing.T) {
			pages := walk(t, db, task.TaskFilter{OwnerID: owner.ID, Completed: ptr(tt.completed), Ordering: task.OrderCreatedDesc, Limit: 4})
			if got := pageSizes(pages); !slices.Equal(got, tt.sizes) {
				t.Fatalf("page sizes = %v, want %v", got, tt.sizes)
			}
			var got []uuid.UUID
			for _, p := range pages {
				for _, tk := range p.Items {
					if tk.Completed != tt.completed {
						t.Fatalf("task %q completed = %v, want %v", tk.Title, tk.Completed, tt.completed)
					}
				}
				got = append(got, ids(p.Items)...)
			}
			want := ids(slices.SortedFunc(slices.Values(tt.want), reversed(byCreated)))
			if !slices.Equal(got, want) {
				t.Fatalf("ids = %v, want %v", got, want)
			}
		})
	}
}

func TestFindTasksSearch(t *testing.T) {
	db, _ := pgtest.Open(t)
	owner, other := newUser(t, db), newUser(t, db)
	fixtures := []struct{ title, description string }{
		{"Buy Milk", ""},
		{"Call mom", "about the MILK delivery"},
		{"100 percent", "done"},
		{"Read book", "50% off at the shop"},
		{"Write code", "use snake_case names"},
		{"Backup", `copy C:\temp first`},
		{"Plain task", "nothing special"},
	}
	for _, f := range fixtures {
		newTask(t, db, owner.ID, f.title, f.description)
	}
	newTask(t, db, other.ID, "Milk for others", "another owner 100% snake_case")

	tests := []struct {
		search string
		want   []string
	}{
		{"milk", []string{"Buy Milk", "Call mom"}},
		{"MiLk", []string{"Buy Milk", "Call mom"}},
		{"BOOK", []string{"Read book"}},
		{"%", []string{"Read book"}},
		{"100%", nil},
		{"0% o", []string{"Read book"}},
		{"_", []string{"Write code"}},
		{"e_c", []string{"Write code"}},
		{"0_p", nil},
		{"k_p", nil},
		{`\`, []string{"Backup"}},
		{`\t`, []string{"Backup"}},
		{"zzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.search, func(t *testing.T) {
			p, err := db.Tasks().FindTasks(t.Context(), task.TaskFilter{OwnerID: owner.ID, Search: tt.search, Ordering: task.OrderTitleAsc, Limit: 100})
			if err != nil {
				t.Fatalf("FindTasks: %v", err)
			}
			var got []string
			for _, tk := range p.Items {
				got = append(got, tk.Title)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("search %q = %q, want %q", tt.search, got, tt.want)
			}
		})
	}
}

// TestUpdateTaskIfMatchRace sends many writes conditional on one version at
// once: exactly one applies, the others see the precondition fail, so no
// update is lost.
func TestUpdateTaskIfMatchRace(t *testing.T) {
	db, _ := pgtest.Open(t)
	owner := newUser(t, db)
	tk := newTask(t, db, owner.ID, "Contended", "")

	const n = 20
	errs := race(n, func(i int) error {
		_, err := db.Tasks().UpdateTask(t.Context(), owner.ID, tk.ID,
			task.TaskUpdate{Description: ptr(fmt.Sprintf("writer %d", i)), IfMatch: task.IfMatch{tk.Version}})
		return err
	})

	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both applied, want exactly one", winner, i)
			}
			winner = i
			continue
		}
		wantErr(t, fmt.Sprintf("writer %d", i), err, task.ErrPrecondition)
	}
	if winner < 0 {
		t.Fatalf("no writer applied, want exactly one")
	}
	got := findTask(t, db, owner.ID, tk.ID)
	if want := fmt.Sprintf("writer %d", winner); got.Description != want || got.Version != tk.Version+1 {
		t.Fatalf("description, version = %q, %d, want %q, %d", got.Description, got.Version, want, tk.Version+1)
	}
}

// seedSearch gives owner n tasks in SQL: every other title says "common",
// one description in a hundred "Sparse", three "rare gem", one in 600
// "50% off"; titles repeat three times, so title orderings need the id.
func seedSearch(tb testing.TB, dsn string, owner uuid.UUID, n int) {
	tb.Helper()
	execSQL(tb, sqlConn(tb, dsn), `INSERT INTO tasks (owner_id, title, description, completed, created_at, updated_at)
		SELECT $1, 'Item ' || (g % ($2 / 3)) || CASE WHEN g % 2 = 0 THEN ' common' ELSE '' END,
			CASE WHEN g % 100 = 37 THEN 'a Sparse note' ELSE 'plain' END ||
			CASE WHEN g IN (5, $2 / 2, $2 - 1) THEN ' rare gem' ELSE '' END ||
			CASE WHEN g % 600 = 1 THEN ' 50% off' ELSE '' END,
			g % 3 = 0, now() - g * interval '1 second', now() - g * interval '1 second'
		FROM generate_series(1, $2::int) g`, owner, n)
}

// TestFindTasksSearchAtScale pages through searches over thousands of
// tasks with small pages, so that every way search finds rows is used (a
// page filled while walking the list, walking then the trigram index, the
// index alone), and checks each page against a plain filter of all tasks.
func TestFindTasksSearchAtScale(t *testing.T) {
	db, dsn := pgtest.OpenWith(t, postgres.Options{SearchBudget: time.Minute})
	owner, other := newUser(t, db), newUser(t, db)
	seedSearch(t, dsn, owner.ID, 3000)
	seedSearch(t, dsn, other.ID, 600)
	execSQL(t, sqlConn(t, dsn), `ANALYZE tasks`)

	all, err := db.Tasks().FindTasks(t.Context(), task.TaskFilter{OwnerID: owner.ID, Ordering: task.OrderCreatedDesc, Limit: 100})
	if err != nil {
		t.Fatalf("FindTasks: %v", err)
	}
	var tasks []*task.Task
	for p := all; ; {
		tasks = append(tasks, p.Items...)
		if p.Next == nil {
			break
		}
		if p, err = db.Tasks().FindTasks(t.Context(), task.TaskFilter{OwnerID: owner.ID, Ordering: task.OrderCreatedDesc, Limit: 100, Cursor: p.Next}); err != nil {
			t.Fatalf("FindTasks: %v", err)
		}
	}
	if len(tasks) != 3000 {
		t.Fatalf("owner has %d tasks, want 3000", len(tasks))
	}

	orderings := map[task.Ordering]func(a, b *task.Task) int{
		task.OrderCreatedDesc: reversed(byCreated), task.OrderCreatedAsc: byCreated,
		task.OrderTitleAsc: byTitle, task.OrderTitleDesc: reversed(byTitle),
	}
	tests := []struct {
		search    string
		completed *bool
		limit     int
		matches   int
	}{
		{"common", nil, 4, 1500},
		{"SPARSE", nil, 2, 30},
		{"sparse", ptr(true), 3, 10},
		{"rare gem", nil, 2, 3},
		{"50% off", nil, 2, 5},
		{"absent", nil, 2, 0},
	}
	for _, tt := range tests {
		name := tt.search
		if tt.completed != nil {
			name += fmt.Sprintf(" completed=%v", *tt.completed)
		}
		for ordering, cmp := range orderings {
			t.Run(name+"/"+string(ordering), func(t *testing.T) {
				var want []*task.Task
				for _, tk := range tasks {
					s := strings.ToLower(tt.search)
					if (strings.Contains(strings.ToLower(tk.Title), s) || strings.Contains(strings.ToLower(tk.Description), s)) &&
						(tt.completed == nil || tk.Completed == *tt.completed) {
						want = append(want, tk)
					}
				}
				slices.SortFunc(want, cmp)
				if len(want) != tt.matches {
					t.Fatalf("fixture: %d tasks match, want %d", len(want), tt.matches)
				}
				if len(want) > 60 {
					want = want[:60] // the start of the list is enough for a common pattern
				}

				f := task.TaskFilter{OwnerID: owner.ID, Search: tt.search, Completed: tt.completed, Ordering: ordering, Limit: tt.limit}
				var got []uuid.UUID
				var pages []*task.Page[*task.Task]
				for len(got) < len(want) || len(pages) == 0 {
					p, err := db.Tasks().FindTasks(t.Context(), f)
					if err != nil {
						t.Fatalf("FindTasks(page %d): %v", len(pages)+1, err)
					}
					pages = append(pages, p)
					got = append(got, ids(p.Items)...)
					if p.Next == nil {
						break
					}
					f.Cursor = p.Next
				}
				if !slices.Equal(got, ids(want)) {
					t.Fatalf("pages = %v,\nwant %v", got, ids(want))
				}
				if len(want) == tt.matches && len(pages) > 0 && pages[len(pages)-1].Next != nil {
					t.Fatalf("last page has a Next cursor")
				}
				// Backwards from the last page walked gives the pages before it.
				for i := len(pages) - 1; i > 0; i-- {
					f.Cursor = pages[i].Previous
					p, err := db.Tasks().FindTasks(t.Context(), f)
					if err != nil {
						t.Fatalf("FindTasks(previous of page %d): %v", i+1, err)
					}
					if !slices.Equal(ids(p.Items), ids(pages[i-1].Items)) {
						t.Fatalf("previous of page %d = %v, want %v", i+1, ids(p.Items), ids(pages[i-1].Items))
					}
				}
			})
		}
	}
}

func TestTaskQuota(t *testing.T) {
	_, dsn := pgtest.Open(t)
	db, err := postgres.Open(t.Context(), dsn, postgres.Options{MaxTasksPerUser: 5})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	ctx := t.Context()
	conn := sqlConn(t, dsn)

	t.Run("full, then room after a delete", func(t *testing.T) {
		u, other := newUser(t, db), newUser(t, db)
		var created []*task.Task
		for i := range 5 {
			created = append(created, newTask(t, db, u.ID, fmt.Sprintf("Task %d", i), ""))
		}
		err := db.Tasks().CreateTask(ctx, &task.Task{OwnerID: u.ID, Title: "One too many"})
		wantErr(t, "CreateTask over the quota", err, task.ErrQuotaExceeded)
		wantCode(t, "CreateTask over the quota", err, task.EQUOTA)
		newTask(t, db, other.ID, "Someone else's", "")

		if err := db.Tasks().DeleteTask(ctx, u.ID, created[2].ID, nil); err != nil {
			t.Fatalf("DeleteTask: %v", err)
		}
		newTask(t, db, u.ID, "Fits again", "")
		err = db.Tasks().CreateTask(ctx, &task.Task{OwnerID: u.ID, Title: "One too many again"})
		wantErr(t, "CreateTask over the quota after refilling", err, task.ErrQuotaExceeded)
	})
	t.Run("rows loaded in SQL count", func(t *testing.T) {
		u := newUser(t, db)
		execSQL(t, conn, `INSERT INTO tasks (owner_id, title) SELECT $1, 'Loaded ' || g FROM generate_series(1, 5) g`, u.ID)
		err := db.Tasks().CreateTask(ctx, &task.Task{OwnerID: u.ID, Title: "Over a bulk load"})
		wantErr(t, "CreateTask after a bulk load", err, task.ErrQuotaExceeded)
		execSQL(t, conn, `DELETE FROM tasks WHERE owner_id = $1 AND title = 'Loaded 1'`, u.ID)
		newTask(t, db, u.ID, "After a bulk delete", "")
	})
	t.Run("concurrent creates stop exactly at the quota", func(t *testing.T) {
		u := newUser(t, db)
		newTask(t, db, u.ID, "Already there", "")
		const n = 20
		errs := race(n, func(i int) error {
			return db.Tasks().CreateTask(ctx, &task.Task{OwnerID: u.ID, Title: fmt.Sprintf("Racer %d", i)})
		})
		ok := succeeded(t, errs, task.ErrQuotaExceeded)
		var stored int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE owner_id = $1`, u.ID).Scan(&stored); err != nil {
			t.Fatalf("count: %v", err)
		}
		if ok != 4 || stored != 5 {
			t.Fatalf("created %d of %d racers, %d stored; want 4 created, 5 stored", ok, n, stored)
		}
	})
	t.Run("deleting the user deletes the tasks", func(t *testing.T) {
		u := newUser(t, db)
		tk := newTask(t, db, u.ID, "Goes with its owner", "")
		execSQL(t, conn, `DELETE FROM users WHERE id = $1`, u.ID)
		_, err := db.Tasks().FindTaskByID(ctx, u.ID, tk.ID)
		wantErr(t, "FindTaskByID after deleting the owner", err, task.ErrNotFound)
	})
	t.Run("zero is no limit", func(t *testing.T) {
		unlimited, _ := pgtest.Open(t)
		u := newUser(t, unlimited)
		for i := range 8 {
			newTask(t, unlimited, u.ID, fmt.Sprintf("Task %d", i), "")
		}
	})
}

// TestSearchStopsShortAtItsBudget: a text that every row's trigrams admit
// but whose check is slow (long descriptions) makes a page stop at its
// statement budget with what it walked so far and a link onwards, instead
// of reading every row; a page that cannot get anywhere is unavailable.
func TestSearchStopsShortAtItsBudget(t *testing.T) {
	db, dsn := pgtest.Open(t)
	owner := newUser(t, db)
	conn := sqlConn(t, dsn)
	// The newest 1,100 tasks are quick to check; the 2,000 before them hold
	// the text's trigrams in 10,000 characters, but never the text.
	execSQL(t, conn, `INSERT INTO tasks (owner_id, title, description, created_at, updated_at)
		SELECT $1, 'Long note', 'aab ' || repeat('a', 9990), now() - (2000 + g) * interval '1 second', now()
		FROM generate_series(1, 2000) g`, owner.ID)
	execSQL(t, conn, `INSERT INTO tasks (owner_id, title, description, created_at, updated_at)
		SELECT $1, 'Short note', 'x', now() - g * interval '1 second', now() FROM generate_series(1, 1100) g`, owner.ID)
	execSQL(t, conn, `ANALYZE tasks`)

	f := task.TaskFilter{OwnerID: owner.ID, Search: strings.Repeat("a", 150) + "b", Ordering: task.OrderCreatedDesc, Limit: 20}
	start := time.Now()
	p, err := db.Tasks().FindTasks(t.Context(), f)
	if err != nil {
		t.Fatalf("FindTasks: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the page took %v, want it cut at its budget", took)
	}
	if len(p.Items) != 0 || p.Next == nil || p.Previous != nil {
		t.Fatalf("page = %d items, next %v, previous %v; want none, a link onwards, no way back", len(p.Items), p.Next, p.Previous)
	}
	f.Cursor = p.Next
	start = time.Now()
	_, err = db.Tasks().FindTasks(t.Context(), f)
	if task.ErrorCode(err) != task.EUNAVAILABLE {
		t.Fatalf("a page that walks nothing within its budget: err = %v, want unavailable", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %v, want it at the budget", took)
	}
}
