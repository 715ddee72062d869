"""The Gradio chat page: ask in a browser, see the answer stream in and the passages it cites.

``build_demo(assistant)`` returns the page; ``serve_options(settings)`` are the keyword
arguments to give ``Blocks.launch`` or ``gradio.mount_gradio_app`` so that the page looks right
and Gradio's file routes serve nothing from the data directory, ``.env`` or the repository.
The handlers (``rag.chat.handlers``) are plain functions, testable without a browser.
"""

from rag.chat.page import build_demo
from rag.chat.serving import serve_options

__all__ = ["build_demo", "serve_options"]
