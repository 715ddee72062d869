"""How well each sentence of the retrieved passages answers a question.

One scorer serves three jobs: the extractive answerer picks its sentences with it, the refusal
gate asks whether anything scores high enough, and citation checking asks whether a generated
sentence is supported by the sentence it cites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from ingest.text import sentence_spans, stems
from rag.embeddings import Embedder
from rag.records import Passage

_WORD = re.compile(r"[\w'’-]+")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
MONTH = "(" + "|".join(m[:3] for m in MONTHS) + ")"
"""A month's first three letters, as a regex group ("Sept.", "Nov", "November" all start so)."""
_YEAR_OR_DATE = re.compile(
    r"\b(1[89]\d\d|20\d\d)\b|\b" + MONTH + r"[a-z]*\.?\s+\d"
    r"|\b\d{1,2}(st|nd|rd|th)?\s+" + MONTH +
    r"|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today)\b", re.I)
# A figure in words: "forty", "twenty-five", "a dozen", "1.2 million".
NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|dozens?)\b", re.I)
_SPELLED = {word: n for n, words in enumerate((
    ("zero",), ("one", "first"), ("two", "second"), ("three", "third"), ("four", "fourth"),
    ("five", "fifth"), ("six", "sixth"), ("seven", "seventh"), ("eight", "eighth"),
    ("nine", "ninth"), ("ten", "tenth"), ("eleven", "eleventh"), ("twelve", "twelfth")))
    for word in words}
_SPELLED_NUMBER = re.compile(r"\b(" + "|".join(_SPELLED) + r")\b", re.I)
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]+")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    extra = {"whose", "did", "does", "tell", "said", "say", "says", "according", "also", "would",
             "could", "many", "much", "year", "name", "named", "new"}
    return frozenset(STOPWORDS_EN_PLUS) | extra


def content_terms(text: str) -> set[str]:
    """Stemmed, lower-cased content words of ``text``."""
    words = [w.strip("'’-").lower() for w in _WORD.findall(text)]
    words = [w for w in words if w and w not in _stopwords()]
    return set(stems(words))


# "Which two installation contractors", "what engineering firm": up to two words (not a verb
# or article: "what did the company say" asks no name) between the wh-word and its noun.
_NAME_QUESTION = re.compile(
    r"\bwho(m|se)?\b|\bwhere\b|\b(which|what)"
    r"(?:\s+(?!(?:did|does|do|is|are|was|were|has|have|had|will|would|can|could|should|the|a|"
    r"an|of|to|in|on|for)\b)[a-z-]+){0,2}\s+(company|team|country|person|player|city|movie|"
    r"film|show|actor|actress|director|club|band|song|album|book|state|nation|president|ceo|"
    r"game|console|car|brand|firm|party|candidate|airline|university|channel|network|"
    r"contractor|officer|agent|executive|manager|coach|minister|judge|lawyer|agency|bank|"
    r"supplier|insurer|developer|sponsor|newspaper|hospital|school|group)s?\b")
_QUESTION_NUMBER = re.compile(r"\b[a-z]?\d+(?:st|nd|rd|th|s)?\b", re.I)


def answer_type(question: str) -> str:
    """A coarse expected answer type from the question's wording."""
    q = question.lower()
    if re.search(r"\bhow (many|much|old|long|far|tall|big)\b|\bwhat (percentage|number)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|time)\b|\bwhich (year|date|day)\b"
                 r"|\b(release|premiere|launch) date\b", q):
        return "date"
    if _NAME_QUESTION.search(q):
        return "name"
    return "other"


def question_numbers(question: str) -> set[str]:
    """Numbers the question pins down ('2021', 'Q3', '90th', '11'): an answer must match them."""
    return {m.lower() for m in _QUESTION_NUMBER.findall(question)}


_PERCENT = re.compile(r"\b\d[\d,.]*\s*(?:%|per ?cent(?:age points?)?\b)", re.I)
_WANTS_SHARE = re.compile(r"\b(percent|percentage|proportion|share|rate|ratio)\b", re.I)
_MONEY_QUESTION = re.compile(
    r"\bhow much\b(?=.*\b(money|revenue|revenues|funding|grant|compensation|fee|fine|fined|"
    r"pay|paid|spend|spent|cost|costs|charge|charged|earn|earned|raise|raised|lose|lost|"
    r"award|awarded|prize|salary|settle|settlement|budget|worth|invest|invested)\b)", re.I)
_CURRENCY = re.compile(r"[$£€¥₹]|\b(?:dollars?|pounds?|euros?|crowns?|kronor|kroner|francs?|"
                       r"yen|rupees?|pesos?|usd|eur|gbp)\b", re.I)


# The words after "how many", up to an auxiliary or preposition.
_HOW_MANY = re.compile(r"\bhow many\s+((?:(?!(?:did|does|do|is|are|was|were|has|have|had|will|"
                       r"would|can|could|in|of|on|at|for|to|from|by|with|within)\b)"
                       r"[\w'’-]+\s*){1,4})", re.I)


def counted_noun(question: str) -> str | None:
    """What "how many" counts, or None.

    The head of its noun phrase: the first plural word, or else the last one ('units' in
    'how many HearthCell battery units are covered', 'patients' in 'how many patients died',
    'aircraft' in 'how many aircraft did').
    """
    match = _HOW_MANY.search(question)
    if not match:
        return None
    words = [w.lower() for w in _WORD.findall(match.group(1))]
    for word in words:
        if word.endswith("s") and not word.endswith("ss"):
            return word
    return words[-1] if words else None


def _names_noun(noun: str, sentence: str) -> bool:
    words = [w.strip("'’-").lower() for w in _WORD.findall(sentence)]
    return stems([noun])[0] in set(stems(words))


# Kinds of money a "how much" question can name. An answer names the same kind, or its figure
# is another of the story's sums: the clean-up bill does not say how much a company was fined.
_MONEY_KINDS = tuple(frozenset(group.split()) for group in (
    "fine fined fines penalty penalties penalised penalized",
    "settle settled settlement settlements",
    "compensation compensate compensated",
    "salary salaries wage wages",
    "revenue revenues sales turnover",
    "profit profits earnings",
    "ransom ransoms",
    "bail",
    "bonus bonuses"))
# A post held for now, and one held for good: who was named interim chief is not who was named
# permanent chief, and a sentence naming an interim holder does not answer for the permanent one.
_ROLE = (r"(?:chief|head|president|director|chair\w*|manager|coach|ceo|minister|premier|mayor|"
         r"leader|governor|commissioner|editor|secretary|principal)")
_INTERIM = re.compile(r"\b(?:interim|caretaker|temporary|stand-in)\b|\bacting\s+(?:[a-z]+\s+)?"
                      + _ROLE + r"\b", re.I)
_PERMANENT = re.compile(r"\bpermanent(?:ly)?\b", re.I)


def _words(text: str) -> set[str]:
    return {w.strip("'’-").lower() for w in _WORD.findall(text)}


def other_money(question: str, sentence: str) -> bool:
    """Whether "how much" names a kind of money (fined, revenue) that the sentence does not."""
    if not re.search(r"\bhow much\b", question, re.I):
        return False
    asked, said = _words(question), _words(sentence)
    return any(kind & asked and not kind & said for kind in _MONEY_KINDS)


def other_tenure(question: str, sentence: str) -> bool:
    """Whether the question asks about a permanent post and the sentence an interim one.

    Or the reverse: a sentence naming only the permanent holder, for a question on the interim.
    """
    permanent, interim = bool(_PERMANENT.search(question)), bool(_INTERIM.search(question))
    if permanent and not interim:
        return bool(_INTERIM.search(sentence))
    if interim and not permanent:
        return bool(_PERMANENT.search(sentence)) and not _INTERIM.search(sentence)
    return False


_NUMERAL = re.compile(r"(?:\d{1,2}|[IVX]{1,4})(?![\w'’-])")
_TITLE_WORD = re.compile(r"[\w'’-]+")
_COUNTS = re.compile(r"\s*(?:%|per\b|percent\b|(?:years?|months?|weeks?|days?|hours?|minutes?|"
                     r"times|million|billion|thousand|hundred|people|points?)\b)", re.I)


def other_edition(question: str, sentence: str) -> bool:
    """Whether the sentence numbers a title the question names without that number.

    "Marvel's Spider-Man 2 will launch on 20 October" is about the sequel, not about the
    "Marvel's Spider-Man" asked about, as "the Canal Line 3" is not the Canal Line.
    Two of the question's words in a row, capitalised in the sentence as a title is, then a
    one- or two-digit or Roman numeral that does not follow them in the question and that
    counts nothing ("became CEO of Apple 10 years ago" names no Apple 10).
    """
    asked = [w.lower() for w in _TITLE_WORD.findall(question)]
    pairs = {(a, b): asked[i + 2] if i + 2 < len(asked) else ""
             for i, (a, b) in enumerate(zip(asked, asked[1:], strict=False))}
    words = list(_TITLE_WORD.finditer(sentence))
    for first, second in zip(words, words[1:], strict=False):
        key = (first.group(0).lower(), second.group(0).lower())
        if key not in pairs or sentence[first.end():second.start()] != " " or not (
                first.group(0)[0].isupper() and second.group(0)[0].isupper()):
            continue
        rest = sentence[second.end():]
        number = _NUMERAL.match(rest[1:]) if rest[:1] == " " else None
        if number and number.group(0).lower() != pairs[key] and not _COUNTS.match(
                rest[1 + number.end():]):
            return True
    return False


_SUPERLATIVE_QUESTION = re.compile(r"\bthe (?:most|least|fewest|\w{2,}est)\b", re.I)
_RANKING = re.compile(r"\b(?:most|least|fewest|\w{2,}est|top|topped|tops|record|leading|led|"
                      r"leads|first|more than any|ahead of)\b", re.I)


def unranked(question: str, sentence: str) -> bool:
    """Whether the question asks for "the most" (largest, fewest) and the sentence ranks nothing.

    "The United States dominated the snowboard events" does not say which country won the
    most medals.
    """
    return bool(_SUPERLATIVE_QUESTION.search(question)) and not _RANKING.search(sentence)


def about_something_else(question: str, sentence: str) -> bool:
    """Whether the sentence is about another post, edition or ranking than the question asks.

    Checked whatever the question asks for: a sentence about the interim chief, the sequel,
    or a sentence that ranks nothing for "the most", does not answer it.
    """
    return (other_tenure(question, sentence) or other_edition(question, sentence)
            or unranked(question, sentence))


def type_match(kind: str, sentence: str, question: str, *, counted: bool = True) -> float:
    """1.0 when the sentence holds something of the expected kind that the question lacks.

    "How many ..." is not answered by a percentage (unless it asks for a share), nor by a
    sentence that does not name what is counted ("how many votes" is not answered by a
    sentence without votes in it); "how much" money is answered only by a sum of money.
    ``counted=False`` drops the counted-noun rule: a written answer ("He won 8,412 [1]") may
    leave the noun (and the kind of money) to the sentence it cites. A sentence about an
    interim post does not answer a question about the permanent one, whatever it asks for.
    (The other checks of ``about_something_else`` judge answers, not this score: the score
    also picks what a language model reads, and a sequel's sentence is still context.)
    """
    if other_tenure(question, sentence):
        return 0.0
    if kind == "number":
        if _MONEY_QUESTION.search(question) and not _CURRENCY.search(sentence):
            return 0.0
        if counted and other_money(question, sentence):
            return 0.0
        noun = counted_noun(question) if counted else None
        if noun and not _names_noun(noun, sentence):
            return 0.0
        if re.search(r"\bhow many\b", question, re.I) and not _WANTS_SHARE.search(question):
            sentence = _PERCENT.sub(" ", sentence)
        fresh = {m.lower() for m in _QUESTION_NUMBER.findall(sentence)} - question_numbers(
            question)
        return 1.0 if fresh or NUMBER.search(re.sub(r"\d", "", sentence)) else 0.0
    if kind == "date":
        for match in _YEAR_OR_DATE.finditer(sentence):
            if match.group(0).lower() not in question_numbers(question):
                return 1.0
        return 0.0
    if kind == "name":
        names = {m.lower() for m in _PROPER.findall(sentence)}
        fresh = content_terms(" ".join(names)) - content_terms(question)
        return 1.0 if fresh else 0.0
    return 1.0


_CLAIM_NAME = re.compile(r"\b[A-Z][\w'’-]+")
_QUANTITY = re.compile(r"\b(revenues?|sales|profits?|income|earnings|prices?|costs?|salary|"
                       r"population|budget|worth|attendance|amount|score)\b", re.I)
_NAMED = re.compile(r"\b(location|venue|hometown|headquarters|name of|called)\b", re.I)


def expected_kind(question: str) -> str:
    """``answer_type``, plus what a question without a wh-word asks for by its noun.

    "What was Tesla's revenue in Q3?" wants a number, "Super Bowl 2021 location" and "What is
    the name of Microsoft's headset?" a name, though none says "how much", "where" or "who".
    """
    kind = answer_type(question)
    if kind == "other" and _QUANTITY.search(question):
        return "number"
    if kind == "other" and _NAMED.search(question):
        return "name"
    return kind


def claim_kind_match(kind: str, claim: str, question: str) -> bool:
    """Whether a written answer states something of the expected kind that the question lacks.

    Like ``type_match``, except that a capitalised first word counts as a name: a model's
    answer often starts with it ("Facebook acquired WhatsApp").
    """
    if kind == "name":
        names = " ".join(m.lower() for m in _CLAIM_NAME.findall(claim))
        return bool(content_terms(names) - content_terms(question))
    return type_match(kind, claim, question, counted=False) >= 1.0


def meets_numbers(question: str, passage: Passage) -> bool:
    """Whether the passage (headline, text, year) holds every number the question pins down."""
    return _holds(question_numbers(question), _context(passage))


def spelled_numbers(text: str) -> set[str]:
    """Digits of the small numbers ``text`` spells out: "fourth season" holds 4 and 4th."""
    out = set()
    for word in _SPELLED_NUMBER.findall(text):
        n = _SPELLED[word.lower()]
        out.add(str(n))
        if word.lower().endswith(("st", "nd", "rd", "th")):
            out.add(f"{n}{word.lower()[-2:]}")
    return out


def _holds(numbers: set[str], context: str) -> bool:
    return all(re.search(rf"\b{re.escape(n)}\b", context) for n in numbers)


@dataclass
class SentenceEvidence:
    """One sentence of one passage, and how well it answers the question."""

    passage: int
    start: int
    end: int
    text: str
    similarity: float
    overlap: float
    novelty: float
    kind_match: float
    constrained: bool
    score: float

    @property
    def answers(self) -> bool:
        """Whether this sentence can be an answer.

        It holds something of the expected kind, its passage matches the question's numbers
        (years, seasons, quarters), and it is not itself a question.
        """
        return (self.constrained and self.kind_match >= 1.0 and not self.text.endswith("?")
                and not is_heading(self.text))


def is_heading(sentence: str) -> bool:
    """A title or label rather than a statement: too short, or mostly Capitalised Words."""
    words = _WORD.findall(sentence)
    if len(words) < 5:
        return True
    capitalised = sum(1 for w in words if w[:1].isupper() or w[:1].isdigit())
    return capitalised / len(words) > 0.7


def _context(passage: Passage) -> str:
    """Headline, text and year of a passage, with spelled-out small numbers also as digits."""
    year = f" {passage.published.year}" if passage.published else ""
    text = f"{passage.headline}\n{passage.text}"
    digits = " ".join(sorted(spelled_numbers(text)))
    return f"{text}{year} {digits}".lower()


class EvidenceScorer:
    """Scores sentences against a question by meaning, shared words and answer type."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._memo: dict[tuple[str, str, tuple[str, ...]], list[SentenceEvidence]] = {}

    def score(self, question: str, passages: Sequence[Passage],
              context: str = "") -> list[SentenceEvidence]:
        """Every sentence of every passage, best first (remembered for the last few asks).

        ``context`` (the question a follow-up follows) only adds meaning: a sentence is as
        similar as it is to the question alone or to the question in its context.
        """
        key = (question, context, tuple(f"{p.chunk_id}:{hash(p.text)}" for p in passages))
        found = self._memo.get(key)
        if found is None:
            # Requests share this scorer across threads: keep our own reference, since another
            # request may clear the memo between our store and our read.
            found = self._score(question, passages, context)
            if len(self._memo) > 64:
                self._memo.clear()
            self._memo[key] = found
        return found

    def remember_subset(self, question: str, candidates: Sequence[Passage],
                        evidence: Sequence[SentenceEvidence], chosen: Sequence[Passage],
                        context: str = "") -> None:
        """Remember the evidence of ``chosen`` (some of ``candidates``) from that of all of them.

        A sentence's score depends only on its own passage, so the scores of the candidates
        serve the chosen few as they are: the gate and the answerer do not embed them again.
        """
        where = {p.chunk_id: i for i, p in enumerate(candidates)}
        renumber = {where[p.chunk_id]: n for n, p in enumerate(chosen)}
        subset = [replace(e, passage=renumber[e.passage]) for e in evidence
                  if e.passage in renumber]
        key = (question, context, tuple(f"{p.chunk_id}:{hash(p.text)}" for p in chosen))
        if len(self._memo) > 64:
            self._memo.clear()
        self._memo[key] = subset

    def _score(self, question: str, passages: Sequence[Passage],
               context: str) -> list[SentenceEvidence]:
        items: list[tuple[int, int, int, str]] = []
        for i, passage in enumerate(passages):
            for start, end in sentence_spans(passage.text):
                text = passage.text[start:end]
                if len(text) >= 12:
                    items.append((i, start, end, text))
        if not items:
            return []
        queries = [question, f"{question} {context}"] if context else [question]
        vectors = self.embedder.embed(queries + [t for _, _, _, t in items])
        sims = (vectors[len(queries):] @ vectors[:len(queries)].T).max(axis=1)
        q_terms = content_terms(question)
        if not q_terms and context:
            # "Where was it?" names nothing itself: the question it follows does.
            q_terms |= content_terms(context)
        q_numbers = question_numbers(question)
        kind = answer_type(question)
        constrained = [_holds(q_numbers, _context(p)) for p in passages]  # per passage
        out = []
        for (i, start, end, text), sim in zip(items, sims, strict=True):
            terms = content_terms(text)
            known = terms | content_terms(passages[i].headline)
            overlap = len(q_terms & known) / len(q_terms) if q_terms else 0.0
            novelty = min(len(terms - q_terms) / 4.0, 1.0)
            match = type_match(kind, text, question)
            score = 0.55 * float(sim) + 0.3 * overlap + 0.1 * match + 0.05 * novelty
            out.append(SentenceEvidence(i, start, end, text, float(sim), overlap, novelty,
                                        match, constrained[i], score))
        out.sort(key=lambda e: -e.score)
        return out

    def support(self, claim: str, passage: Passage) -> tuple[float, int, int]:
        """How well ``passage`` supports ``claim``: best sentence's score and its span."""
        spans = sentence_spans(passage.text) or [(0, len(passage.text))]
        texts = [passage.text[s:e] for s, e in spans]
        vectors = self.embedder.embed([claim, *texts])
        sims = vectors[1:] @ vectors[0]
        claim_terms = content_terms(claim)
        best = (0.0, 0, len(passage.text))
        for (start, end), text, sim in zip(spans, texts, sims, strict=True):
            terms = content_terms(text)
            covered = len(claim_terms & terms) / len(claim_terms) if claim_terms else 0.0
            value = 0.5 * float(sim) + 0.5 * covered
            if value > best[0]:
                best = (value, start, end)
        return best

