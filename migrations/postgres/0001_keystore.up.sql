-- The keystore of the Postgres backend: one partition (P = 1), one row per
-- kid. The current kid has expires_at_ms NULL; verifying kids carry the
-- last millisecond (inclusive, backend clock) at which they still verify.
CREATE TABLE ff_keys (
    kid             text   PRIMARY KEY,
    secret          bytea  NOT NULL,
    installed_at_ms bigint NOT NULL,
    expires_at_ms   bigint NULL
);

-- At most one current kid, enforced by the database itself: a unique index
-- on a constant over the rows without expiry. A second current row cannot
-- be committed, whatever the isolation level or the client.
CREATE UNIQUE INDEX ff_keys_one_current ON ff_keys ((true)) WHERE expires_at_ms IS NULL;
