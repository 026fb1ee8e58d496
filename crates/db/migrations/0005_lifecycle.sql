-- The case life cycle to verified closure (核实结案), deadlines, administration and a
-- tamper-evident audit log.

-- A case's deadline (处置时限 turned into a time), when it became final, and when the
-- platform was reminded that it is overdue (NULL: not yet, for the current deadline).
ALTER TABLE cases ADD COLUMN deadline_at DOUBLE PRECISION;
ALTER TABLE cases ADD COLUMN closed_at DOUBLE PRECISION;
ALTER TABLE cases ADD COLUMN reminded_at DOUBLE PRECISION;
ALTER TABLE cases ADD COLUMN status_at DOUBLE PRECISION;

-- Every status a case went through, in order: filed, dispatched, handled, verified_closed,
-- not_rectified, check_manual, returned, closed, overdue. `id` is the idempotency key: a
-- platform event's own id, or one citywatch derives.
CREATE TABLE case_events (
    id          TEXT PRIMARY KEY,
    case_number TEXT NOT NULL REFERENCES cases (case_number),
    seq         BIGINT NOT NULL,       -- 1, 2, ... per case
    at          DOUBLE PRECISION NOT NULL,
    status      TEXT NOT NULL,
    actor       TEXT NOT NULL,         -- platform, platform-poll, citywatch, or a user
    detail      TEXT
);
CREATE UNIQUE INDEX case_events_seq ON case_events (case_number, seq);

-- Nonces of signed platform callbacks, kept for the replay window.
CREATE TABLE platform_nonces (
    nonce TEXT PRIMARY KEY,
    at    DOUBLE PRECISION NOT NULL
);

-- The closure check (核实) of a case reported handled: where to look, from when, and how
-- many looks could not judge the place.
CREATE TABLE closure_checks (
    case_number  TEXT PRIMARY KEY REFERENCES cases (case_number),
    camera       TEXT NOT NULL,
    rule         TEXT NOT NULL,
    zone         TEXT NOT NULL,
    label        TEXT NOT NULL,
    bbox         TEXT NOT NULL,        -- JSON [x1, y1, x2, y2], normalised
    package      TEXT,                 -- the evidence package, relative to the root
    requested_at DOUBLE PRECISION NOT NULL,
    due_at       DOUBLE PRECISION NOT NULL,
    attempts     BIGINT NOT NULL,
    state        TEXT NOT NULL,        -- waiting, done, manual
    last_reason  TEXT
);
CREATE INDEX closure_checks_state ON closure_checks (state, camera);

-- Users an admin disabled cannot log in; their sessions and tokens stop working.
ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
-- Idle expiry: when a session was last used.
ALTER TABLE sessions ADD COLUMN last_seen_at DOUBLE PRECISION NOT NULL DEFAULT 0;

-- The audit log as a hash chain: row n's hash covers its fields and row n-1's hash, so an
-- edited or deleted row breaks the chain (`citywatch audit verify`).
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
