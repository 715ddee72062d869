"""The exceptions the assistant raises; each one's message is a plain sentence for users."""


class RagError(Exception):
    """Base class: its message is safe to show to a user as it is."""


class StoreUnavailable(RagError):
    """The Chroma store cannot be opened or reached."""


class StoreLocked(RagError):
    """Another process is already writing to this embedded store."""


class ModelUnavailable(RagError):
    """A configured model is missing, corrupt or cannot be loaded."""


class ChecksumMismatch(ModelUnavailable):
    """A model file's sha256 differs from the pinned one."""


class Stopped(RagError):
    """The caller stopped the answer while the model was writing it."""


class InvalidInput(RagError):
    """A question, filter or file was rejected before any work was done."""


class TooLarge(InvalidInput):
    """A request or an upload is over its size limit."""


class NotFound(InvalidInput):
    """Something the caller named (an article, say) is not in the index."""
