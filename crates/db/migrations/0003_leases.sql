-- Several `citywatch run --worker` processes sharing one database: each worker's heartbeat,
-- and one lease per camera (and per singleton job, such as '@outbox'). A lease is held while
-- its expiry is in the future; `generation` grows by one at every take, so a worker can tell
-- that a camera it held was taken over meanwhile.

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    started_at    DOUBLE PRECISION NOT NULL,
    heartbeat_at  DOUBLE PRECISION NOT NULL,
    expires_at    DOUBLE PRECISION NOT NULL,
    capacity      BIGINT,              -- the most cameras it takes; NULL: no limit
    held          BIGINT NOT NULL      -- cameras it held at its last heartbeat
);

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,      -- a camera id, or '@job' for a singleton job
    worker      TEXT,                  -- NULL: free
    expires_at  DOUBLE PRECISION NOT NULL,
    generation  BIGINT NOT NULL,
    taken_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX leases_worker ON leases (worker);
