"""The privacy model: keys, pseudonyms, identity tokens, the consent ledger and scrubbing."""
