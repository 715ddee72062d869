"""Answer streams that stop the model when the client goes away."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent


def stopping_on_disconnect(events: Iterator[ServerSentEvent],
                           stop: threading.Event) -> EventSourceResponse:
    """An SSE response of ``events`` that sets ``stop`` when the client disconnects.

    The answer is read in a worker thread that cannot be cancelled, so without this the model
    would finish (and hold the cores for) an answer nobody reads; ``stop`` ends its writing
    at its next token instead.
    """
    async def hung_up(message: Any) -> None:
        stop.set()

    return EventSourceResponse(events, client_close_handler_callable=hung_up)
