package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

type taskJSON struct {
	ID          uuid.UUID `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Completed   bool      `json:"completed"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreatedBy   uuid.UUID `json:"created_by"`
}

func taskResponse(t *task.Task) taskJSON {
	return taskJSON{ID: t.ID, Title: t.Title, Description: t.Description, Completed: t.Completed,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(), CreatedBy: t.OwnerID}
}

type pageJSON[T any] struct {
	Results  []T     `json:"results"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
}

// taskRequest is the body of POST, PUT and PATCH. Read-only fields are
// accepted and dropped, as DRF does, so a client can send back what it read.
type taskRequest struct {
	Title       Optional[string] `json:"title"`
	Description Optional[string] `json:"description"`
	Completed   Optional[bool]   `json:"completed"`

	ID        json.RawMessage `json:"id"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
	CreatedBy json.RawMessage `json:"created_by"`

	full bool // set before decoding: POST and PUT need a title
}

// taskFields carries the rules of the writable text fields.
type taskFields struct {
	Title       string `json:"title" validate:"min=3,max=200,title"`
	Description string `json:"description" validate:"max=10000,text"`
}

// valid checks the fields the request names: none may be null, and a
// full write (POST, PUT) needs a title; PATCH changes only what it names.
func (req *taskRequest) valid() error {
	var errs []error
	var partial []string
	notNull := func(name string, set, null bool) bool {
		if null {
			errs = append(errs, task.FieldError(name, "This field may not be null."))
		}
		return set && !null
	}
	if notNull("title", req.Title.Set, req.Title.Null) {
		partial = append(partial, "Title")
	} else if req.full && !req.Title.Set {
		errs = append(errs, task.FieldError("title", "This field is required."))
	}
	if notNull("description", req.Description.Set, req.Description.Null) {
		partial = append(partial, "Description")
	}
	notNull("completed", req.Completed.Set, req.Completed.Null)
	if len(partial) > 0 {
		errs = append(errs, check(&taskFields{Title: req.Title.Value, Description: req.Description.Value}, partial...))
	}
	return merge(errs...)
}

// update is the change a valid request asks for.
func (req *taskRequest) update() task.TaskUpdate {
	var upd task.TaskUpdate
	if req.Title.given() {
		upd.Title = &req.Title.Value
	}
	if req.Description.given() {
		upd.Description = &req.Description.Value
	}
	if req.Completed.given() {
		upd.Completed = &req.Completed.Value
	}
	return upd
}

// handleTaskList handles GET /api/tasks/.
func (s *Server) handleTaskList(w http.ResponseWriter, r *http.Request) {
	id := task.IdentityFromContext(r.Context())
	f, err := taskFilter(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	f.OwnerID = id.UserID
	page, err := s.deps.Tasks.FindTasks(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, pageOf(s, r, page, taskResponse))
}

// pageOf is the JSON of one page: its items and the links to its neighbours.
func pageOf[T, J any](s *Server, r *http.Request, page *task.Page[T], toJSON func(T) J) pageJSON[J] {
	out := pageJSON[J]{Results: make([]J, 0, len(page.Items))}
	for _, x := range page.Items {
		out.Results = append(out.Results, toJSON(x))
	}
	out.Next, out.Previous = s.pageLink(r, page.Next), s.pageLink(r, page.Previous)
	return out
}

// pageParams reads limit and cursor of a list in its one fixed order.
func pageParams(q url.Values) (int, *task.Cursor, error) {
	limit, err := pageLimit(q)
	if err != nil {
		return 0, nil, err
	}
	cur, err := task.DecodeCursor(q.Get("cursor"), "")
	return limit, cur, err
}

// taskFilter reads the list's query parameters; bad values are field errors.
func taskFilter(q url.Values) (task.TaskFilter, error) {
	f := task.TaskFilter{Ordering: task.OrderCreatedDesc, Search: strings.TrimSpace(q.Get("search"))}
	var errs []error
	if v := q.Get("completed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, task.FieldError("completed", "Must be true or false."))
		}
		f.Completed = &b
	}
	// Under three characters no trigram index can help, and the scan would
	// cost the database what a user with a million tasks makes it cost.
	if n := utf8.RuneCountInString(f.Search); n > 200 {
		errs = append(errs, task.FieldError("search", "Search must be at most 200 characters long."))
	} else if n > 0 && n < 3 {
		errs = append(errs, task.FieldError("search", "Search must be at least 3 characters long."))
	} else if !utf8.ValidString(f.Search) || strings.ContainsRune(f.Search, 0) {
		errs = append(errs, task.FieldError("search", "Search must be UTF-8 text."))
	}
	if v := q.Get("ordering"); v != "" {
		f.Ordering = task.Ordering(v)
		if !f.Ordering.Valid() {
			errs = append(errs, task.FieldError("ordering", "Must be one of: created_at, -created_at, title, -title."))
		}
	}
	var err error
	if f.Limit, err = pageLimit(q); err != nil {
		errs = append(errs, err)
	}
	if err := merge(errs...); err != nil {
		return f, err
	}
	f.Cursor, err = task.DecodeCursor(q.Get("cursor"), f.Ordering)
	return f, err
}

func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 20, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return 0, task.FieldError("limit", "Must be an integer from 1 to 100.")
	}
	return n, nil
}

// pageLink is the absolute URL of this request with its cursor set to c.
func (s *Server) pageLink(r *http.Request, c *task.Cursor) *string {
	if c == nil {
		return nil
	}
	q := r.URL.Query()
	q.Set("cursor", c.Encode())
	link := s.absoluteURL(r, "", r.URL.Path, q.Encode())
	return &link
}

// handleTaskCreate handles POST /api/tasks/. With an Idempotency-Key the
// task and its answer are stored together, and a repeat gets that answer.
func (s *Server) handleTaskCreate(w http.ResponseWriter, r *http.Request) {
	keys, once := r.Header["Idempotency-Key"]
	if once && len(keys) != 1 {
		s.error(w, r, task.ErrIdempotencyKeyInvalid)
		return
	}
	if once {
		// Checked before the body is read, so a bad key never creates anything.
		if _, err := task.NewIdempotencyKey(keys[0], "", "", nil); err != nil {
			s.error(w, r, err)
			return
		}
	}
	req := taskRequest{full: true}
	body, err := s.decodeBody(w, r, &req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// What the request leaves out is the zero value: no description, not completed.
	t := &task.Task{OwnerID: task.IdentityFromContext(r.Context()).UserID, Title: req.Title.Value,
		Description: req.Description.Value, Completed: req.Completed.Value}
	if once {
		key, _ := task.NewIdempotencyKey(keys[0], r.Method, taskCreateRoute, body)
		s.createTaskOnce(w, r, t, key)
		return
	}
	if err := s.deps.Tasks.CreateTask(r.Context(), t); err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", taskLocation(t))
	w.Header().Set("ETag", etag(t))
	s.encode(w, http.StatusCreated, taskResponse(t))
}

// taskCreateRoute is the route an idempotency fingerprint names.
const taskCreateRoute = "/api/tasks/"

func taskLocation(t *task.Task) string { return "/api/tasks/" + t.ID.String() + "/" }

// createTaskOnce creates t under key, or replays the answer stored for it.
func (s *Server) createTaskOnce(w http.ResponseWriter, r *http.Request, t *task.Task, key task.IdempotencyKey) {
	reply, replayed, err := s.deps.Tasks.CreateTaskOnce(r.Context(), t, key, func(t *task.Task) (task.Reply, error) {
		b, err := marshal(taskResponse(t))
		return task.Reply{Status: http.StatusCreated, Location: taskLocation(t), ETag: etag(t), Body: b}, err
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	h := w.Header()
	if reply.Location != "" {
		h.Set("Location", reply.Location)
	}
	if reply.ETag != "" {
		h.Set("ETag", reply.ETag)
	}
	if replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, reply.Status, reply.Body)
}

// handleTaskGet handles GET /api/tasks/{id}/.
func (s *Server) handleTaskGet(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	t, err := s.deps.Tasks.FindTaskByID(r.Context(), task.IdentityFromContext(r.Context()).UserID, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(t))
	if inm := strings.TrimSpace(r.Header.Get("If-None-Match")); inm == "*" || slices.Contains(entityTags(inm, true), t.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.encode(w, http.StatusOK, taskResponse(t))
}

// handleTaskReplace handles PUT /api/tasks/{id}/.
func (s *Server) handleTaskReplace(w http.ResponseWriter, r *http.Request) { s.updateTask(w, r, true) }

// handleTaskUpdate handles PATCH /api/tasks/{id}/.
func (s *Server) handleTaskUpdate(w http.ResponseWriter, r *http.Request) { s.updateTask(w, r, false) }

func (s *Server) updateTask(w http.ResponseWriter, r *http.Request, full bool) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	req := taskRequest{full: full}
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	upd := req.update()
	upd.IfMatch = ifMatch(r.Header.Get("If-Match"))
	t, err := s.deps.Tasks.UpdateTask(r.Context(), task.IdentityFromContext(r.Context()).UserID, id, upd)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(t))
	s.encode(w, http.StatusOK, taskResponse(t))
}

// handleTaskDelete handles DELETE /api/tasks/{id}/.
func (s *Server) handleTaskDelete(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	owner := task.IdentityFromContext(r.Context()).UserID
	if err := s.deps.Tasks.DeleteTask(r.Context(), owner, id, ifMatch(r.Header.Get("If-Match"))); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pathID parses the {id} of the route; anything but a UUID names nothing.
func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil || len(chi.URLParam(r, "id")) != 36 {
		return uuid.Nil, task.ErrNotFound
	}
	return id, nil
}

// etag is the strong validator of a task: its version, which every write bumps.
func etag(t *task.Task) string { return `"` + strconv.FormatInt(t.Version, 10) + `"` }

// ifMatch parses If-Match: nil when absent or "*", otherwise the versions
// named by strong tags of ours. Weak tags never match (RFC 9110 13.1.1).
func ifMatch(h string) task.IfMatch { return entityTags(h, false) }

// entityTags parses a list of entity tags into versions; weak tags count
// only when weak comparison is asked for (If-None-Match, RFC 9110 13.1.2).
func entityTags(h string, weak bool) task.IfMatch {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return nil
	}
	out := task.IfMatch{}
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimSpace(tag)
		if weak {
			tag = strings.TrimPrefix(tag, "W/")
		}
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			continue
		}
		if v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}
