"""Memory keys: the keyed BLAKE2b of the input, the same for the same input, each MemoKey with its own key."""

import hashlib

from collector.privacy.memokey import MemoKey


def test_a_memo_key_is_the_keyed_blake2b_of_its_input_under_a_key_of_its_own():
    a, b = MemoKey(), MemoKey()
    assert a("https://example.org/p") == a("https://example.org/p") != a("https://example.org/q")
    assert a("https://example.org/p") != b("https://example.org/p")  # another random key
    assert len(a("x")) == 16 and a("") != b("")
    assert a("\ud800 lone surrogate") == a("\ud800 lone surrogate")  # encodable, as the raw input may hold one
    # nothing of the input, and not the plain (unkeyed) hash
    assert a("81.2.69.142") != hashlib.blake2b(b"81.2.69.142", digest_size=16).digest()
