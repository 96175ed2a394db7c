-- The network pseudonym: HMAC(K_visitor[period], site ‖ network), the network being the client's
-- /24 (IPv4) or /48 (IPv6). It rotates and is destroyed with the visitor key. The analyst views count
-- their small-group threshold on it as well as on visitors: a client can invent client ids, not networks.
ALTER TABLE events ADD COLUMN IF NOT EXISTS network_id String AFTER key_id;
