-- Money is in micro-dollars (1 USD = 1_000_000), always INTEGER.
CREATE TABLE guild_budgets (
    guild_id             INTEGER PRIMARY KEY,
    default_limit_micros INTEGER,
    cap_micros           INTEGER
);

CREATE TABLE user_limits (
    guild_id     INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    limit_micros INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- One row per reservation; state moves held -> captured | released exactly once.
CREATE TABLE holds (
    job_key     TEXT PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    period      TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount >= 0),
    description TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('held', 'captured', 'released')),
    created_at  REAL NOT NULL,
    settled_at  REAL
);
CREATE INDEX holds_user_period ON holds (guild_id, user_id, period, state);

-- The journal: every change of a balance is a row, written in the transaction that allowed it.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    period      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('hold', 'capture', 'release', 'adjustment')),
    amount      INTEGER NOT NULL,
    job_key     TEXT,
    description TEXT NOT NULL,
    actor_id    INTEGER,
    created_at  REAL NOT NULL
);
CREATE UNIQUE INDEX ledger_job_kind ON ledger (job_key, kind) WHERE job_key IS NOT NULL;
CREATE INDEX ledger_user_period ON ledger (guild_id, user_id, period);
