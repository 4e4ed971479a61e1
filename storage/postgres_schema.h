// Versioned schema migrations for the PostgreSQL repository. The table
// air_schema holds the applied version; each migration runs in its own
// transaction at open, under a transaction-level advisory lock so that
// replicas starting together migrate once. Append new migrations; never edit
// an applied one. The tables mirror storage/sqlite_schema.h: resources as
// serialized protobuf (`body`) beside the columns queries filter and sort
// on, times as Unix microseconds.
#ifndef AIR_STORAGE_POSTGRES_SCHEMA_H_
#define AIR_STORAGE_POSTGRES_SCHEMA_H_

#include <cstdint>

namespace air::pg {

struct Migration {
  int version;
  const char* sql;
};

// pg_advisory_xact_lock key held while migrating ("air-migr").
inline constexpr int64_t kMigrationLockKey = 0x6169722d6d696772;

inline constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE investigations (
  id        TEXT PRIMARY KEY,
  state     BIGINT NOT NULL,
  source    BIGINT NOT NULL,
  verdict   BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  update_us BIGINT NOT NULL,
  body      BYTEA NOT NULL
);
CREATE INDEX investigations_by_create ON investigations (create_us, id);
CREATE INDEX investigations_by_update ON investigations (update_us, id);
CREATE INDEX investigations_by_state ON investigations (state, create_us, id);

CREATE TABLE actions (
  id               TEXT PRIMARY KEY,
  investigation_id TEXT NOT NULL,
  type             BIGINT NOT NULL,
  state            BIGINT NOT NULL,
  create_us        BIGINT NOT NULL,
  expire_us        BIGINT NOT NULL,
  body             BYTEA NOT NULL
);
CREATE INDEX actions_by_create ON actions (create_us, id);
CREATE INDEX actions_by_state_type ON actions (state, type, create_us, id);
CREATE INDEX actions_by_type ON actions (type, create_us, id);
CREATE INDEX actions_by_investigation ON actions (investigation_id, create_us, id);
CREATE INDEX actions_pending_by_expiry ON actions (expire_us) WHERE state = 1;

-- The transactional outbox behind WatchActions. Sequences are assigned from
-- event_log below, never from a SEQUENCE (see postgres_repository.cc).
CREATE TABLE events (
  sequence  BIGINT PRIMARY KEY,
  commit_us BIGINT NOT NULL,
  body      BYTEA NOT NULL
);

-- One row: the next event sequence and the first retained one. Every write
-- transaction locks it first, which serialises writers across replicas.
CREATE TABLE event_log (
  id             INT PRIMARY KEY CHECK (id = 1),
  next_sequence  BIGINT NOT NULL,
  first_retained BIGINT NOT NULL
);
INSERT INTO event_log (id, next_sequence, first_retained) VALUES (1, 1, 1);

-- Every decision, append-only: the triggers refuse updates and deletes.
CREATE TABLE decision_audit (
  id               BIGSERIAL PRIMARY KEY,
  action_id        TEXT NOT NULL,
  investigation_id TEXT NOT NULL,
  from_state       BIGINT NOT NULL,
  to_state         BIGINT NOT NULL,
  outcome          BIGINT NOT NULL,
  source           BIGINT NOT NULL,
  decider          TEXT NOT NULL,
  comment          TEXT NOT NULL,
  policy_rule      TEXT NOT NULL,
  request_id       TEXT NOT NULL,
  decide_us        BIGINT NOT NULL
);
CREATE INDEX decision_audit_by_action ON decision_audit (action_id, id);
CREATE FUNCTION decision_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'decision_audit is append-only'; END $$;
CREATE TRIGGER decision_audit_no_update BEFORE UPDATE OR DELETE ON decision_audit
  FOR EACH ROW EXECUTE FUNCTION decision_audit_append_only();
CREATE TRIGGER decision_audit_no_truncate BEFORE TRUNCATE ON decision_audit
  FOR EACH STATEMENT EXECUTE FUNCTION decision_audit_append_only();

-- First results of idempotent requests, by request_id.
CREATE TABLE request_log (
  request_id  TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  response    BYTEA NOT NULL,
  create_us   BIGINT NOT NULL
);

-- Upstream sync: the last applied upstream version of each synced record.
CREATE TABLE upstream_versions (
  kind    BIGINT NOT NULL,  -- 1 investigation, 2 action
  id      TEXT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (kind, id)
);

-- Opaque upstream cursors, written in the same transaction as their page.
CREATE TABLE sync_cursors (
  name      TEXT PRIMARY KEY,
  cursor    TEXT NOT NULL,
  update_us BIGINT NOT NULL
);

-- Decisions waiting to reach the upstream, in commit order (positions are
-- taken while the event_log row is locked, so they commit in order too).
CREATE TABLE decision_outbox (
  position         BIGSERIAL PRIMARY KEY,
  request_id       TEXT NOT NULL UNIQUE,
  action_id        TEXT NOT NULL,
  outcome          BIGINT NOT NULL,
  source           BIGINT NOT NULL,
  decider          TEXT NOT NULL,
  comment          TEXT NOT NULL,
  decide_us        BIGINT NOT NULL,
  duplicate_of     TEXT NOT NULL,
  upstream_version BIGINT NOT NULL,
  enqueue_us       BIGINT NOT NULL,
  delivered_us     BIGINT,
  result           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX decision_outbox_undelivered ON decision_outbox (position)
  WHERE delivered_us IS NULL;

-- The latest original approval per target, for the duplicate rule.
CREATE TABLE target_approvals (
  target_key TEXT PRIMARY KEY,
  action_id  TEXT NOT NULL,
  approve_us BIGINT NOT NULL
);
)sql"},
};

}  // namespace air::pg

#endif  // AIR_STORAGE_POSTGRES_SCHEMA_H_
