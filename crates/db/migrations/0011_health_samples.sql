-- The fleet's capacity and health, sampled every few minutes by each web process (from the
-- cameras it runs): the summary's "last day" charts. Kept two days.
CREATE TABLE health_samples (
    at          DOUBLE PRECISION NOT NULL,
    source      TEXT NOT NULL,              -- the process that sampled ('local', or a worker id)
    cameras     BIGINT NOT NULL,
    streaming   BIGINT NOT NULL,
    unhealthy   BIGINT NOT NULL,            -- backing off, failed or frozen
    off_view    BIGINT NOT NULL,
    analysed_per_min BIGINT NOT NULL,       -- frames analysed in the last minute, all cameras
    inferences_per_min BIGINT NOT NULL,     -- of those, the ones the detector ran on
    PRIMARY KEY (source, at)
);
CREATE INDEX health_samples_at ON health_samples (at);
