"""News develops: for a question about a figure, the newest reports of a story come first.

Later articles of a story revise the figures of earlier ones (a recall widened, a cost revised,
a toll raised), and the earlier ones still match the question as well. So when a question asks
for a figure ("how many ...", "what is the estimated cost ..."), the candidate articles are
ranked again by publication date, newest first, and that ranking is fused with the others
(``rag.answering.rerank``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from rag.records import Passage

_FIGURE = re.compile(
    r"\bhow (?:many|much|long|big|large|far|often)\b"
    r"|\bwhat (?:is|was|are|were) the (?:\w+ ){0,2}"
    r"(?:cost|costs|number|total|toll|price|figure|amount|value|count|size|tally|estimate)\b",
    re.I)


def asks_for_figure(question: str) -> bool:
    """Whether ``question`` asks for a quantity that later reports may have revised."""
    return bool(_FIGURE.search(question))


def newest_first(passages: Sequence[Passage]) -> dict[str, int]:
    """Each article of ``passages`` (best match first) by its place newest first.

    Undated articles follow the dated ones, in their order.
    """
    articles: dict[str, dt.date | None] = {}
    for passage in passages:
        articles.setdefault(passage.article_id, passage.published)
    dated = sorted((a for a, day in articles.items() if day is not None),
                   key=lambda a: articles[a] or dt.date.min, reverse=True)
    undated = [a for a, day in articles.items() if day is None]
    return {aid: place for place, aid in enumerate(dated + undated)}
