// Versioned schema migrations for the SQLite repository. PRAGMA user_version
// holds the applied version; each migration runs in its own transaction at
// open. Append new migrations; never edit an applied one.
#ifndef AIR_STORAGE_SQLITE_SCHEMA_H_
#define AIR_STORAGE_SQLITE_SCHEMA_H_

namespace air::sqlite {

struct Migration {
  int version;
  const char* sql;
};

// Resources are stored as serialized protobuf (`body`) beside the columns
// that queries filter and sort on. Times are Unix microseconds.
inline constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE investigations (
  id        TEXT PRIMARY KEY,
  state     INTEGER NOT NULL,
  source    INTEGER NOT NULL,
  verdict   INTEGER NOT NULL,
  create_us INTEGER NOT NULL,
  update_us INTEGER NOT NULL,
  body      BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX investigations_by_create ON investigations (create_us, id);
CREATE INDEX investigations_by_update ON investigations (update_us, id);
CREATE INDEX investigations_by_state ON investigations (state, create_us, id);

CREATE TABLE actions (
  id               TEXT PRIMARY KEY,
  investigation_id TEXT NOT NULL,
  type             INTEGER NOT NULL,
  state            INTEGER NOT NULL,
  create_us        INTEGER NOT NULL,
  expire_us        INTEGER NOT NULL,
  body             BLOB NOT NULL
);
CREATE INDEX actions_by_create ON actions (create_us, id);
CREATE INDEX actions_by_state_type ON actions (state, type, create_us, id);
CREATE INDEX actions_by_type ON actions (type, create_us, id);
CREATE INDEX actions_by_investigation ON actions (investigation_id, create_us, id);
CREATE INDEX actions_pending_by_expiry ON actions (expire_us) WHERE state = 1;

-- The transactional outbox behind WatchActions.
CREATE TABLE events (
  sequence  INTEGER PRIMARY KEY,
  commit_us INTEGER NOT NULL,
  body      BLOB NOT NULL
);

-- Every decision, append-only: the triggers refuse updates and deletes.
CREATE TABLE decision_audit (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  action_id        TEXT NOT NULL,
  investigation_id TEXT NOT NULL,
  from_state       INTEGER NOT NULL,
  to_state         INTEGER NOT NULL,
  outcome          INTEGER NOT NULL,
  source           INTEGER NOT NULL,
  decider          TEXT NOT NULL,
  comment          TEXT NOT NULL,
  policy_rule      TEXT NOT NULL,
  request_id       TEXT NOT NULL,
  decide_us        INTEGER NOT NULL
);
CREATE INDEX decision_audit_by_action ON decision_audit (action_id, id);
CREATE TRIGGER decision_audit_no_update BEFORE UPDATE ON decision_audit
BEGIN SELECT RAISE(ABORT, 'decision_audit is append-only'); END;
CREATE TRIGGER decision_audit_no_delete BEFORE DELETE ON decision_audit
BEGIN SELECT RAISE(ABORT, 'decision_audit is append-only'); END;

-- First results of idempotent requests, by request_id.
CREATE TABLE request_log (
  request_id  TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  response    BLOB NOT NULL,
  create_us   INTEGER NOT NULL
) WITHOUT ROWID;

-- Small named integers: the first retained event sequence, sync cursors.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('first_retained_sequence', 1);
)sql"},
    {2, R"sql(
-- Upstream sync. The last applied upstream version of each synced record:
-- a record whose version is not greater is a replay and is ignored.
CREATE TABLE upstream_versions (
  kind    INTEGER NOT NULL,  -- 1 investigation, 2 action
  id      TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;

-- Opaque upstream cursors, written in the same transaction as their page.
CREATE TABLE sync_cursors (
  name      TEXT PRIMARY KEY,
  cursor    TEXT NOT NULL,
  update_us INTEGER NOT NULL
) WITHOUT ROWID;

-- Decisions waiting to reach the upstream, in commit order. Rows stay after
-- delivery (delivered_us set) as a record of what was sent.
CREATE TABLE decision_outbox (
  position         INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id       TEXT NOT NULL UNIQUE,
  action_id        TEXT NOT NULL,
  outcome          INTEGER NOT NULL,
  source           INTEGER NOT NULL,
  decider          TEXT NOT NULL,
  comment          TEXT NOT NULL,
  decide_us        INTEGER NOT NULL,
  duplicate_of     TEXT NOT NULL,
  upstream_version INTEGER NOT NULL,
  enqueue_us       INTEGER NOT NULL,
  delivered_us     INTEGER,
  result           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX decision_outbox_undelivered ON decision_outbox (position)
  WHERE delivered_us IS NULL;

-- The latest original approval per target (type + identifier), for the
-- rule that an identical action approved within an hour is not run again.
CREATE TABLE target_approvals (
  target_key TEXT PRIMARY KEY,
  action_id  TEXT NOT NULL,
  approve_us INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
    {3, R"sql(
-- Plain integer keys instead of AUTOINCREMENT: neither table ever deletes a
-- row (the audit's trigger forbids it), so a key is never reused anyway,
-- and AUTOINCREMENT read and rewrote sqlite_sequence on every insert (a
-- page written per decision).
CREATE TABLE decision_audit_v3 (
  id               INTEGER PRIMARY KEY,
  action_id        TEXT NOT NULL,
  investigation_id TEXT NOT NULL,
  from_state       INTEGER NOT NULL,
  to_state         INTEGER NOT NULL,
  outcome          INTEGER NOT NULL,
  source           INTEGER NOT NULL,
  decider          TEXT NOT NULL,
  comment          TEXT NOT NULL,
  policy_rule      TEXT NOT NULL,
  request_id       TEXT NOT NULL,
  decide_us        INTEGER NOT NULL
);
INSERT INTO decision_audit_v3 SELECT * FROM decision_audit;
DROP TABLE decision_audit;
ALTER TABLE decision_audit_v3 RENAME TO decision_audit;
CREATE INDEX decision_audit_by_action ON decision_audit (action_id, id);
CREATE TRIGGER decision_audit_no_update BEFORE UPDATE ON decision_audit
BEGIN SELECT RAISE(ABORT, 'decision_audit is append-only'); END;
CREATE TRIGGER decision_audit_no_delete BEFORE DELETE ON decision_audit
BEGIN SELECT RAISE(ABORT, 'decision_audit is append-only'); END;

CREATE TABLE decision_outbox_v3 (
  position         INTEGER PRIMARY KEY,
  request_id       TEXT NOT NULL UNIQUE,
  action_id        TEXT NOT NULL,
  outcome          INTEGER NOT NULL,
  source           INTEGER NOT NULL,
  decider          TEXT NOT NULL,
  comment          TEXT NOT NULL,
  decide_us        INTEGER NOT NULL,
  duplicate_of     TEXT NOT NULL,
  upstream_version INTEGER NOT NULL,
  enqueue_us       INTEGER NOT NULL,
  delivered_us     INTEGER,
  result           TEXT NOT NULL DEFAULT ''
);
INSERT INTO decision_outbox_v3 SELECT * FROM decision_outbox;
DROP TABLE decision_outbox;
ALTER TABLE decision_outbox_v3 RENAME TO decision_outbox;
CREATE INDEX decision_outbox_undelivered ON decision_outbox (position)
  WHERE delivered_us IS NULL;
DELETE FROM sqlite_sequence;
)sql"},
};

}  // namespace air::sqlite

#endif  // AIR_STORAGE_SQLITE_SCHEMA_H_
