-- Counts kept as the rows change, so a year of captures costs /metrics, the summary, the
-- learning page and the queue's total next to nothing. Written in the same transaction as
-- the rows they count (store::tally); `citywatch` counts them again from the rows when this
-- migration runs (Store::connect, while the table is empty).
--   captures, cases   bucket 0: all time, by rule, camera and status
--   outbox            bucket 0: delivered rows
--   hour_captures     bucket = hour of confirm_at (Unix s / 3600): by rule and status
--   day_captures      bucket = UTC day of confirm_at: by rule, camera and status
--   hour_replayed     recorded footage (stream time a day or more from recording), by rule
--   hour_reasons      rejections by reason (in status)
--   hour_filing       recording to filing, wall time, by rule; status = latency bin (s)
--   hour_decision     recording to an operator's first decision, likewise
CREATE TABLE tallies (
    subject TEXT NOT NULL,
    bucket  BIGINT NOT NULL,
    rule    TEXT NOT NULL,
    camera  TEXT NOT NULL,
    status  TEXT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (subject, bucket, rule, camera, status)
);

-- Per camera and rule: operators' verdicts and the lowest confirmed score, for the
-- calibration proposals (store::tally, model::calibrate).
CREATE TABLE verdict_stats (
    camera      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    confirmed   BIGINT NOT NULL,
    rejected    BIGINT NOT NULL,
    lowest      DOUBLE PRECISION,     -- lowest confirmed score; NULL: none confirmed
    threshold   DOUBLE PRECISION,     -- model::calibrate::threshold(lowest)
    PRIMARY KEY (camera, rule)
);

-- Keyset paging: the queue and the capture list in (confirm_at, id) order, with and without
-- a status; cases newest first; the deadline check over the open cases only.
DROP INDEX captures_status;
CREATE INDEX captures_queue ON captures (status, confirm_at, id);
CREATE INDEX captures_time ON captures (confirm_at, id);
CREATE INDEX cases_reported ON cases (reported_at, case_number);
CREATE INDEX cases_status ON cases (status, deadline_at);
CREATE INDEX cases_camera ON cases (camera, reported_at, case_number);
CREATE INDEX captures_camera ON captures (camera, status, confirm_at, id);
-- Rejections under a score (calibration) and a remembered verdict's suppressions.
CREATE INDEX captures_score ON captures (camera, rule, status, score);
CREATE INDEX captures_resembles ON captures (resembles);
-- The audit viewer: newest first, filtered.
CREATE INDEX audit_log_at ON audit_log (at, seq);
