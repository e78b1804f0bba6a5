-- Every statement that writes the keystore notifies channel ff_keystore,
-- with the schema of ff_keys as payload, so that the keystore caches of
-- every process (their LISTEN connection) re-read it at once instead of
-- within their TTL. A trigger, not the driver's write code, so that every
-- writer notifies: any process, any version, psql. NOTIFY is transactional:
-- it is delivered at commit, once per transaction for identical payloads,
-- and never for a rollback. Listeners on the same database but another
-- schema ignore the payloads that are not theirs.
CREATE FUNCTION ff_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ff_keystore', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER ff_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ff_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ff_keys_notify();
