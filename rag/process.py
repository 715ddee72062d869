"""Setting up the process of a long-running front end (API server, chat page, Slack bot).

Each of them answers on a pool of request threads, and every thread that encodes passages would
otherwise get a glibc malloc arena of its own and keep what it freed there. Each also reads the
embedded store for hours, so it must be the store's only writer.
"""

from __future__ import annotations

import os

from rag.settings import Settings

_M_ARENA_MAX = -8  # mallopt's parameter number for the arena limit, from glibc's malloc.h
SERVE_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVE_ARENAS) -> bool:
    """Cap glibc malloc's arenas at ``arenas`` for this process; True if the cap was applied.

    glibc gives each thread that allocates concurrently its own arena, up to 8 per core, and
    keeps what is freed in each one. Under load the server's 40 pool threads each encode
    passages, and their arenas held the load test's server at 3.5 GB; two arenas held it at
    2.0 GB at the same throughput (docs/scaling.md). Call before the request threads start.
    A ``MALLOC_ARENA_MAX`` set in the environment wins (glibc already applied it), and on a C
    library without ``mallopt`` (macOS, musl) this does nothing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def start_service(settings: Settings) -> None:
    """Prepare this process to serve: malloc arenas capped, the embedded store claimed.

    Call it first thing, before the request threads start (the arena cap applies to threads
    created after it) and before the Assistant opens the store.
    """
    from rag.store import claim_store

    limit_malloc_arenas()
    claim_store(settings)
