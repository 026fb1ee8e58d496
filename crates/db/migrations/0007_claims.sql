-- The review queue's claims: a capture reserved for one operator until a decision, a
-- release, or expires_at (claims are taken and stolen only by one conditional upsert, so two
-- operators never hold the same capture).
CREATE TABLE review_claims (
    capture_id  TEXT PRIMARY KEY REFERENCES captures (id),
    holder      TEXT NOT NULL,
    claimed_at  DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX review_claims_holder ON review_claims (holder, expires_at);
