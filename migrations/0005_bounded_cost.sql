-- +goose Up
-- Search: a trigram GIN index answers ILIKE '%x%' without reading every
-- row, and btree_gin lets the same index lead with owner_id, so a search
-- reads only the searcher's entries, never another owner's. Both are
-- contrib extensions shipped with the server. In tests and development the
-- migrating role is a superuser. In production, unless the migrating role
-- may create them (they are marked trusted, so CREATE on the database is
-- enough on a self-run server; managed services restrict extensions), a
-- superuser must run these two statements once before the first migrate.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE INDEX tasks_owner_search_idx ON tasks
    USING gin (owner_id, title gin_trgm_ops, description gin_trgm_ops);

-- Task quota: counting a user's tasks on every insert would cost a scan of
-- up to MAX_TASKS_PER_USER index entries. The count is kept on the user row
-- instead, by statement triggers rather than by the store's statements, so
-- that inserts and deletes from any path (bulk loads and repairs in SQL
-- included) keep it exact; moving a task to another owner or TRUNCATE
-- would not, and nothing does either. CreateTask locks the user row before
-- checking it, which also serialises a user's concurrent inserts.
ALTER TABLE users ADD COLUMN task_count bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION tasks_count_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users u SET task_count = u.task_count + n.n
        FROM (SELECT owner_id, count(*) AS n FROM new_tasks GROUP BY owner_id) n
        WHERE u.id = n.owner_id;
    ELSE
        UPDATE users u SET task_count = u.task_count - o.n
        FROM (SELECT owner_id, count(*) AS n FROM old_tasks GROUP BY owner_id) o
        WHERE u.id = o.owner_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- One trigger per event: transition tables allow only one. A row trigger
-- would update the user row once per task of a bulk insert.
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_tasks FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_owner();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_tasks FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_owner();

-- The triggers' lock on tasks is held from here, so no insert slips between
-- this count and the triggers taking over.
UPDATE users u SET task_count = c.n
FROM (SELECT owner_id, count(*) AS n FROM tasks GROUP BY owner_id) c
WHERE u.id = c.owner_id;

-- Every key expires now (API_KEY_DEFAULT_TTL, 90 days): keys minted before
-- this migration get the default from today rather than living for ever.
UPDATE api_keys SET expires_at = now() + interval '90 days' WHERE expires_at IS NULL AND revoked_at IS NULL;

-- Keyset pages of a user's live keys and sessions, newest first.
CREATE INDEX api_keys_user_live_idx ON api_keys (user_id, created_at, id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_user_live_created_idx ON sessions (user_id, created_at, id) WHERE revoked_at IS NULL;
DROP INDEX sessions_user_live_idx;

-- +goose Down
CREATE INDEX sessions_user_live_idx ON sessions (user_id) WHERE revoked_at IS NULL;
DROP INDEX sessions_user_live_created_idx;
DROP INDEX api_keys_user_live_idx;
DROP TRIGGER tasks_count_delete ON tasks;
DROP TRIGGER tasks_count_insert ON tasks;
DROP FUNCTION tasks_count_owner();
ALTER TABLE users DROP COLUMN task_count;
DROP INDEX tasks_owner_search_idx;
-- The extensions stay: other objects may use them, and dropping needs the
-- rights that creating did.
