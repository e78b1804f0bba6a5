-- FlowFabric-Go SQLite schema, version 4: revoke_kid (docs/spec.md §8.7).
--
-- What changes:
--   * a keystore row may be revoked: revoked = 1, its secret NULL (deleted,
--     never kept, sealed or not) and its expires_at_ms set (now − 1 at the
--     revocation). Revoked rows are kept for as long as the keystore lives,
--     so that a rotation never reuses their kid.
--
-- SQLite cannot relax NOT NULL in place, so keystore is rebuilt (create,
-- copy, drop, rename) inside the migration's one transaction: an
-- interrupted upgrade leaves version 3 as it was. The file runs with
-- secure_delete, so the pages of the dropped table are zeroed. Every row
-- written before this migration is not revoked.

-- keystore: every remembered kid. expires_at_ms is NULL for the current kid
-- and set for a verifying or revoked kid. A row holds its secret (in stored
-- form: plain, or sealed by package kek) exactly when it is not revoked. The
-- partial unique index allows at most one current kid.
CREATE TABLE keystore_v4 (
    kid             TEXT    NOT NULL PRIMARY KEY,
    secret          BLOB,
    installed_at_ms INTEGER NOT NULL,
    expires_at_ms   INTEGER,
    revoked         INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    CHECK ((revoked = 1) = (secret IS NULL)),
    CHECK (revoked = 0 OR expires_at_ms IS NOT NULL)
) STRICT;

INSERT INTO keystore_v4 (kid, secret, installed_at_ms, expires_at_ms)
SELECT kid, secret, installed_at_ms, expires_at_ms FROM keystore;

DROP TABLE keystore;
ALTER TABLE keystore_v4 RENAME TO keystore;

CREATE UNIQUE INDEX keystore_one_current ON keystore ((expires_at_ms IS NULL))
    WHERE expires_at_ms IS NULL;
