"""A near-duplicate fingerprint of an article's body: a MinHash signature of its word shingles.

Wire stories appear under several mastheads with another headline, a paragraph trimmed or a
credit line added. Two such copies share most of their five-word shingles, so their MinHash
signatures agree in most places (``datasketch``); retrieval groups them (``rag.retrieval.
syndication``). The signature is stored with the article's first chunk, so it is written and
removed with the article itself and needs no state of its own.
"""

from __future__ import annotations

import base64
import re

import numpy as np

PERMUTATIONS = 64
SHINGLE_WORDS = 5
SEED = 17
SCHEME = "affine32"  # datasketch's permutation scheme: 32-bit hash values
_WORD = re.compile(r"\w+")


def shingles(text: str) -> set[bytes]:
    """The article's overlapping five-word sequences, lower-cased."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i:i + SHINGLE_WORDS]).encode()
            for i in range(len(words) - SHINGLE_WORDS + 1)}


def signature(text: str) -> str:
    """The MinHash signature of ``text`` as a short ASCII string (stored as metadata)."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME)
    minhash.update_batch(sorted(shingles(text)))
    return base64.b64encode(minhash.hashvalues.astype("<u4").tobytes()).decode("ascii")


def decode(value: str) -> np.ndarray | None:
    """The hash values of a stored signature; None when it is not one of ours."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) != PERMUTATIONS * 4:
        return None
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)
