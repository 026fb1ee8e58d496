-- Learning from the operators' verdicts.
-- A capture's appearance (JSON vector, from the detector's feature map or, for bins, what
-- changed in the zone) and, for a learned suppression (status 'learned'), the rejected
-- capture it resembles and how closely.
ALTER TABLE captures ADD COLUMN embedding TEXT;
ALTER TABLE captures ADD COLUMN resembles TEXT;
ALTER TABLE captures ADD COLUMN similarity DOUBLE PRECISION;

-- The verdict memory: one row per reviewed capture that teaches (confirmations, and
-- rejections for a reason other than duplicate), with its embedding.
CREATE TABLE verdict_memory (
    capture_id  TEXT PRIMARY KEY REFERENCES captures (id),
    camera      TEXT NOT NULL,
    zone        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    said        TEXT NOT NULL,         -- confirmed, rejected
    reason      TEXT,
    embedding   TEXT NOT NULL,         -- JSON vector
    at          DOUBLE PRECISION NOT NULL
);
CREATE INDEX verdict_memory_key ON verdict_memory (camera, zone, rule, at);

-- Calibration overrides an admin applied from the proposals: per camera and rule, a
-- min_score (vehicles, vendors) or change_share (bins) that replaces the config's.
CREATE TABLE calibration (
    camera      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    setting     TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    applied_by  TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (camera, rule, setting)
);
