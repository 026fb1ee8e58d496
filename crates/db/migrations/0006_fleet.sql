-- Patrol across workers: every visit, the worker that made it and the stream slot it held.
-- A visit with no ended_at is under way (or its worker died: its slot lease expires).
CREATE TABLE patrol_visits (
    camera      TEXT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    worker      TEXT NOT NULL,
    slot        TEXT NOT NULL,
    ended_at    DOUBLE PRECISION,
    hot         BIGINT NOT NULL DEFAULT 0,   -- 1: it ended with episodes or a check to watch
    PRIMARY KEY (camera, started_at)
);
CREATE INDEX patrol_visits_open ON patrol_visits (ended_at);

-- The fleet view: each camera's latest health and analysis counters, written every few
-- seconds by the worker running it, read by the web process.
CREATE TABLE camera_status (
    camera      TEXT PRIMARY KEY,
    worker      TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    health      TEXT NOT NULL,               -- JSON, as the status output
    analysis    TEXT                         -- JSON, as the status output
);
