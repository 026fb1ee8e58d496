-- Web users, their sessions and API tokens. Tokens and session ids are stored as sha256
-- hashes only; passwords as argon2 PHC strings.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,       -- viewer, operator, admin
    password_hash TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,      -- sha256 of the cookie value
    user_name   TEXT NOT NULL REFERENCES users (name),
    csrf        TEXT NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,      -- sha256 of the token
    user_name   TEXT NOT NULL REFERENCES users (name),
    label       TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);
