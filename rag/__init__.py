"""Ask questions of news articles: cited answers and plain refusals, fully offline."""

from rag.assistant import Assistant
from rag.errors import RagError
from rag.records import Answer, Citation, Filters, IngestReport, Passage, Preview, Stage, Turn
from rag.settings import Settings

__all__ = ["Answer", "Assistant", "Citation", "Filters", "IngestReport", "Passage", "Preview",
           "RagError", "Settings", "Stage", "Turn"]
