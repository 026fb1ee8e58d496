-- citywatch case store. One schema for SQLite and PostgreSQL: portable types only
-- (TEXT, BIGINT, DOUBLE PRECISION), application-made ids, times as Unix seconds.

CREATE TABLE cameras (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    location    TEXT NOT NULL          -- JSON: address, lat, lon, grid_code, community, street
);

CREATE TABLE episodes (
    camera      TEXT PRIMARY KEY,
    state       TEXT NOT NULL,         -- JSON: the tracker's open episodes
    updated_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE captures (
    id              TEXT PRIMARY KEY,  -- the idempotency key
    camera          TEXT NOT NULL,
    preset          BIGINT,
    rule            TEXT NOT NULL,
    zone            TEXT NOT NULL,
    label           TEXT NOT NULL,
    episode         BIGINT,
    start_at        DOUBLE PRECISION NOT NULL,
    confirm_at      DOUBLE PRECISION NOT NULL,
    bbox            TEXT NOT NULL,     -- JSON [x1, y1, x2, y2], normalised
    score           DOUBLE PRECISION NOT NULL,
    aggregation     BIGINT NOT NULL,
    last_evidence   DOUBLE PRECISION NOT NULL,
    status          TEXT NOT NULL,     -- pending_review, filed, rejected
    evidence        TEXT,              -- JSON: evidence package references
    created_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX captures_status ON captures (status, confirm_at);

CREATE TABLE cases (
    case_number     TEXT PRIMARY KEY,
    capture_id      TEXT NOT NULL UNIQUE REFERENCES captures (id),
    idempotency_key TEXT NOT NULL UNIQUE,
    rule            TEXT NOT NULL,
    major_code      TEXT NOT NULL,
    major_name      TEXT NOT NULL,
    minor_code      TEXT NOT NULL,
    minor_name      TEXT NOT NULL,
    time_limit      TEXT NOT NULL,
    source          TEXT NOT NULL,     -- 事件来源: 视频抓拍
    channel         TEXT NOT NULL,
    camera          TEXT NOT NULL,
    preset          BIGINT,
    location        TEXT NOT NULL,     -- JSON
    description     TEXT NOT NULL,
    status          TEXT NOT NULL,     -- filed, closed
    aggregation     BIGINT NOT NULL,
    evidence        TEXT,
    reported_at     DOUBLE PRECISION NOT NULL,
    filed_at        DOUBLE PRECISION NOT NULL
);

CREATE TABLE reviews (
    id          TEXT PRIMARY KEY,
    capture_id  TEXT NOT NULL REFERENCES captures (id),
    reviewer    TEXT NOT NULL,
    decision    TEXT NOT NULL,         -- confirm, reject
    reason      TEXT,
    note        TEXT,
    at          DOUBLE PRECISION NOT NULL
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    case_number     TEXT NOT NULL REFERENCES cases (case_number),
    idempotency_key TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,     -- pending, delivered, dead
    attempts        BIGINT NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_error      TEXT,
    delivered_at    DOUBLE PRECISION
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE counters (
    name    TEXT PRIMARY KEY,
    value   BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY,
    at      DOUBLE PRECISION NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT
);
