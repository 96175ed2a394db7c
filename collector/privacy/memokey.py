"""Keys for what the process remembers between requests: a keyed BLAKE2b hash (16 bytes) of a raw
input, so a memory can be looked up by what a request sent without holding it. Each ``MemoKey`` has
its own random key, made when it is created and never written anywhere; the keyed state is made once
and copied for each hash."""

from __future__ import annotations

import hashlib
import os


class MemoKey:
    __slots__ = ("_keyed",)

    def __init__(self):
        self._keyed = hashlib.blake2b(key=os.urandom(16), digest_size=16)

    def __call__(self, text: str) -> bytes:
        h = self._keyed.copy()
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.digest()
