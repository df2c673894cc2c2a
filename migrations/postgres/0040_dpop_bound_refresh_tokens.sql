-- DPoP (RFC 9449 §5): a public client's refresh token is bound to the key of the proof it was
-- issued with; the RFC 7638 thumbprint of that key, copied to every successor in the family.
-- NULL: not bound (a confidential client's, or issued without a proof).
ALTER TABLE refresh_token ADD COLUMN dpop_jkt TEXT;
