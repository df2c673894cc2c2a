-- DPoP (RFC 9449 §5, migration 0040) on refresh families (issue 16, migration 0080): a public
-- client's family is bound to the key of the proof it was first issued with, and every
-- rotation must prove possession of that key. Numbered after every migration of main, so that
-- a database that already applied 0040 to 0051 applies this in order; 0040 always ran before
-- 0080, so the legacy table has the column when this copies it.
ALTER TABLE refresh_family ADD COLUMN dpop_jkt TEXT;

-- A family carried over by 0080 is the generation 0 row of its legacy current token, with the
-- same hash: it keeps that token's binding.
UPDATE refresh_family SET dpop_jkt = (
    SELECT l.dpop_jkt FROM legacy_refresh_token l WHERE l.token_hash = refresh_family.token_hash
) WHERE generation = 0;
