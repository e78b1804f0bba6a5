-- Revoked kids (docs/spec.md §8.7). revoke_kid keeps a revoked kid's row
-- for as long as the keystore lives, so that its name is never reused, but
-- deletes its secret: the row holds the kid, revoked = true, secret NULL and
-- the expiry now - 1. Stores at 0005 upgrade in place: every kid there
-- holds a secret and none is revoked. The earlier secret of a revoked kid
-- survives in dead row versions (until VACUUM reuses their space), the WAL
-- and backups, as a rewrap's earlier forms do (§4.6).
--
-- The constraint ties the two columns together whatever the writer: a row
-- holds a secret exactly when it is not revoked, and a revoked row is never
-- the current kid (it has an expiry), so ff_keys_one_current never sees it.
-- A revocation is an UPDATE of ff_keys, so the statement trigger of 0003
-- notifies every keystore cache at its commit, as a rotation does.
ALTER TABLE ff_keys
    ALTER COLUMN secret DROP NOT NULL,
    ADD COLUMN revoked boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT ff_keys_revoked_check CHECK ((secret IS NULL) = revoked AND (NOT revoked OR expires_at_ms IS NOT NULL));
