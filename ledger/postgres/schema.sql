-- planner-mcp's audit ledger on PostgreSQL: the schema, its append-only triggers, and two roles.
-- Apply as the role that will own the tables (not the one the servers connect as), with
-- `planner-mcp ledger init`, or print it for a DBA with `planner-mcp ledger init --print-sql`.
-- Then: CREATE ROLE planner LOGIN PASSWORD '...' IN ROLE planner_mcp_writer;
--
-- The tables mirror the SQLite ledger's, column for column: a row hashes the same on either.
-- Chained rows are never updated, deleted or truncated: the writer role is not granted those, and the
-- triggers below refuse them even to the tables' owner.

CREATE SCHEMA planner_mcp;

CREATE TABLE planner_mcp._migrations (
    name       TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
);

CREATE TABLE planner_mcp.call_intents (
    id                BIGINT PRIMARY KEY,
    seq               BIGINT NOT NULL,
    timestamp         TEXT   NOT NULL,
    request_id        TEXT   NOT NULL UNIQUE,
    client_request_id TEXT,
    agent_id          TEXT   NOT NULL,
    agent_version     TEXT   NOT NULL,
    tier              BIGINT NOT NULL,
    action            TEXT   NOT NULL,
    arguments         TEXT   NOT NULL,
    tools_digest      TEXT   NOT NULL,
    notes             TEXT   NOT NULL DEFAULT '',
    prev_hash         TEXT   NOT NULL,
    row_hash          TEXT   NOT NULL
);

CREATE TABLE planner_mcp.agent_actions (
    id                BIGINT           PRIMARY KEY,
    seq               BIGINT           NOT NULL,
    timestamp         TEXT             NOT NULL,
    agent_id          TEXT             NOT NULL,
    agent_version     TEXT             NOT NULL,
    tier              BIGINT           NOT NULL,
    action            TEXT             NOT NULL,
    decision          TEXT             NOT NULL,
    confidence        DOUBLE PRECISION NOT NULL,
    success           BIGINT           NOT NULL,
    error_type        TEXT,
    error_message     TEXT,
    request_id        TEXT             UNIQUE,
    client_request_id TEXT,
    intent_id         BIGINT,
    refused           BIGINT           NOT NULL DEFAULT 0,
    duration_ms       DOUBLE PRECISION,
    arguments         TEXT             NOT NULL DEFAULT '{}',
    output_digest     TEXT,
    llm_model         TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    tools_digest      TEXT             NOT NULL DEFAULT '',
    notes             TEXT             NOT NULL DEFAULT '',
    prev_hash         TEXT             NOT NULL,
    row_hash          TEXT             NOT NULL
);

CREATE TABLE planner_mcp.ledger_events (
    id        BIGINT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    timestamp TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    row_hash  TEXT   NOT NULL
);

CREATE TABLE planner_mcp.token_reservations (
    id         BIGINT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    timestamp  TEXT   NOT NULL,
    request_id TEXT   NOT NULL,
    agent_id   TEXT   NOT NULL,
    day        TEXT   NOT NULL,
    tokens     BIGINT NOT NULL,
    stage      TEXT   NOT NULL,
    prev_hash  TEXT   NOT NULL,
    row_hash   TEXT   NOT NULL
);

-- The seed's per-agent counters: outside the chain, kept current by each outcome (`verify` names drift).
CREATE TABLE planner_mcp.agent_metrics (
    agent_id              TEXT PRIMARY KEY,
    current_tier          BIGINT,
    total_runs            BIGINT NOT NULL DEFAULT 0,
    compliant_runs        BIGINT NOT NULL DEFAULT 0,
    consecutive_compliant BIGINT NOT NULL DEFAULT 0,
    refused_runs          BIGINT NOT NULL DEFAULT 0,
    error_runs            BIGINT NOT NULL DEFAULT 0,
    last_active_at        TEXT,
    created_at            TEXT,
    updated_at            TEXT
);

-- One place in the chain per row, across every table: a seq is unique within each table, and the
-- writers' advisory lock (`ledger.postgres.storage`) makes it unique across them.
CREATE UNIQUE INDEX call_intents_by_seq ON planner_mcp.call_intents (seq);
CREATE UNIQUE INDEX agent_actions_by_seq ON planner_mcp.agent_actions (seq);
CREATE UNIQUE INDEX ledger_events_by_seq ON planner_mcp.ledger_events (seq);
CREATE UNIQUE INDEX token_reservations_by_seq ON planner_mcp.token_reservations (seq);
CREATE INDEX agent_actions_by_agent ON planner_mcp.agent_actions (agent_id, id);
CREATE INDEX token_reservations_by_day ON planner_mcp.token_reservations (agent_id, day);
CREATE INDEX token_reservations_by_request ON planner_mcp.token_reservations (request_id);
CREATE INDEX agent_actions_tokens_by_day
    ON planner_mcp.agent_actions (agent_id, timestamp, prompt_tokens, completion_tokens)
    WHERE prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL;

CREATE FUNCTION planner_mcp.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION 'the audit ledger is append-only: % rows cannot be changed', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$body$;

CREATE TRIGGER call_intents_no_update BEFORE UPDATE ON planner_mcp.call_intents
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER call_intents_no_delete BEFORE DELETE ON planner_mcp.call_intents
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER call_intents_no_truncate BEFORE TRUNCATE ON planner_mcp.call_intents
    FOR EACH STATEMENT EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER agent_actions_no_update BEFORE UPDATE ON planner_mcp.agent_actions
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER agent_actions_no_delete BEFORE DELETE ON planner_mcp.agent_actions
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER agent_actions_no_truncate BEFORE TRUNCATE ON planner_mcp.agent_actions
    FOR EACH STATEMENT EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON planner_mcp.ledger_events
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON planner_mcp.ledger_events
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON planner_mcp.ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER token_reservations_no_update BEFORE UPDATE ON planner_mcp.token_reservations
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER token_reservations_no_delete BEFORE DELETE ON planner_mcp.token_reservations
    FOR EACH ROW EXECUTE FUNCTION planner_mcp.refuse_change();
CREATE TRIGGER token_reservations_no_truncate BEFORE TRUNCATE ON planner_mcp.token_reservations
    FOR EACH STATEMENT EXECUTE FUNCTION planner_mcp.refuse_change();

INSERT INTO planner_mcp._migrations (name, applied_at) VALUES ('pg001_ledger', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));

-- The roles: servers log in as a member of planner_mcp_writer, auditors as one of planner_mcp_reader.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'planner_mcp_writer') THEN
        CREATE ROLE planner_mcp_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'planner_mcp_reader') THEN
        CREATE ROLE planner_mcp_reader NOLOGIN;
    END IF;
END
$roles$;

REVOKE ALL ON SCHEMA planner_mcp FROM PUBLIC;
GRANT USAGE ON SCHEMA planner_mcp TO planner_mcp_writer, planner_mcp_reader;
GRANT SELECT, INSERT ON planner_mcp.call_intents, planner_mcp.agent_actions, planner_mcp.ledger_events,
    planner_mcp.token_reservations TO planner_mcp_writer;
GRANT SELECT, INSERT, UPDATE ON planner_mcp.agent_metrics TO planner_mcp_writer;
GRANT SELECT ON planner_mcp._migrations TO planner_mcp_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA planner_mcp TO planner_mcp_reader;
