-- DPoP authorization-code binding (RFC 9449 §10): the RFC 7638 thumbprint of the key named by
-- the authorization request's `dpop_jkt` (or of the key of the DPoP proof sent to the PAR
-- endpoint). The code is redeemed only with a proof signed by that key. NULL: not bound.
ALTER TABLE auth_code ADD COLUMN dpop_jkt TEXT;
