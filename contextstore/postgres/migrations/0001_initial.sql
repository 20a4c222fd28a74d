-- The context store's tables. Migrations run with search_path set to the
-- store's schema, under an advisory lock, in one transaction.

-- gen tells a session's incarnations apart: a session deleted, or expired
-- and appended to again, starts over at Seq 1 under a new gen, so that its
-- new entries never collide with what is left of the old ones.
CREATE SEQUENCE session_gen;

CREATE TABLE sessions (
    id       text        PRIMARY KEY,
    gen      bigint      NOT NULL,
    created  timestamptz NOT NULL,
    updated  timestamptz NOT NULL,
    expires  timestamptz,            -- NULL: no TTL
    last_seq bigint      NOT NULL,   -- the Seq of the last entry
    tags     jsonb       NOT NULL DEFAULT '{}',
    prev_gen bigint                  -- set by the append that revived an expired session
);

-- Sessions: most recently updated first, paged by updated.
CREATE INDEX sessions_updated ON sessions (updated DESC, id);
-- Sessions by tags: tags @> '{"k":"v"}'.
CREATE INDEX sessions_tags ON sessions USING gin (tags jsonb_path_ops);
-- The sweeper: expired sessions.
CREATE INDEX sessions_expires ON sessions (expires) WHERE expires IS NOT NULL;

-- content is json, not jsonb: it keeps the text as appended (jsonb would
-- reject \u0000 and reorder keys).
CREATE TABLE entries (
    session text        NOT NULL,
    gen     bigint      NOT NULL,
    seq     bigint      NOT NULL,
    time    timestamptz NOT NULL,
    role    text        NOT NULL,
    agent   text        NOT NULL DEFAULT '',
    content json        NOT NULL,
    tags    json,
    -- History pages by seq, both ways, within one session's generation.
    PRIMARY KEY (session, gen, seq)
);
