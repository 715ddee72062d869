"""``rag eval``: retrieval, answer and citation quality of the assistant on a question set."""

from rag.evaluation.questions import Question, load_questions
from rag.evaluation.runner import evaluate

__all__ = ["Question", "evaluate", "load_questions"]
