"""Verified citations: every generated sentence is checked against the passages it cites.

A sentence is kept when a cited passage supports it; otherwise it is re-attributed to the
passage that does, and failing that it is dropped (or, if asked, kept without a citation and
counted as unsupported). A sentence that links anywhere but to a cited article, or that is
about other years than the question asks about, is unsupported. Supported is not enough: when
no supported sentence answers the question (states the kind of thing asked for, from a passage
about the year or season asked about) the answer is a refusal, since a model shown on-topic
passages that lack the answer tends to copy a related sentence.
A marker that points at no passage never reaches the user, neither in the streamed text
(``MarkerFilter``) nor in the final answer. Support is the evidence scorer's meaning-and-words
score of the claim against the passage's best sentence, plus a hard rule: every number and
name the claim states must occur in the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ingest.text import sentence_spans
from rag.answering.base import Draft, Quotes, refusal
from rag.answering.condense import split_follow_up
from rag.answering.evidence import (
    MONTH,
    MONTHS,
    EvidenceScorer,
    about_something_else,
    claim_kind_match,
    content_terms,
    expected_kind,
    meets_numbers,
    other_money,
    spelled_numbers,
)
from rag.answering.markers import MARKER, marker_numbers, strip_markers
from rag.records import Passage

_LEAD_IN = re.compile(  # "According to passage [1]," -> "[1]"
    r"\b(?:according to|as (?:stated|mentioned|reported|said) in|based on|in|from)\s+"
    r"(?:the\s+)?(?:passages?|articles?|sources?)\s*(?=\[)", re.I)
_LEADING_MARKERS = re.compile(r"^(?:\s*" + MARKER.pattern + r")+", re.I)
_BARE_REFERENCE = re.compile(  # "passage 4" without brackets
    r"(?<!\[)\b(?:passages?|articles?|sources?)\s+(\d{1,2})\b(?!\s*\])", re.I)
_ATTRIBUTION = re.compile(  # "The article from [4] states that X" -> "[4] X"
    r"\b(?:the\s+)?(?:(?:article|passage|source|text|report)s?\s+)?(?:(?:from|in)\s+)?"
    r"(?:(?:article|passage|source)s?\s+)?(\[[^\]]{1,12}\])\s+"
    r"(?:states|says|said|reports|reported|mentions|notes|indicates|shows|confirms|explains)\s+"
    r"(?:that\s+)?", re.I)
_MONTH_ABBREVIATION = re.compile(r"\b(jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\b\.?", re.I)
_MONTH_WORD = MONTH + r"[a-z]*\.?"  # "Sept.", "Nov", "November"; group 1 is "sep", "nov"
_ORDINAL_DAY = re.compile(  # "October 19th" -> "October 19", as news style writes dates
    r"\b(" + _MONTH_WORD + r"\s+\d{1,2})(?:st|nd|rd|th)\b", re.I)
_MONTH_DAY = re.compile(  # "September 20" not followed by a year
    r"\b" + _MONTH_WORD + r"\s+(\d{1,2})\b(?!,?\s*\d{4})(?![\d:])", re.I)
URL = re.compile(r"(?:https?://|www\.)[^\s<>\]\[)(\"']+", re.I)
SPEAKER_WINDOW = 1  # sentences either side of the supporting one where a speaker must be named
_SPEECH = r"(?:said|says|told|stated|warned|added|argued|claimed|insisted)"
_SPEAKER = re.compile(  # the surname in "Robert Gates (has) said", "according to Gates"
    r"\b([A-Z][\w'’-]*)\s+(?:has\s+|had\s+)?" + _SPEECH + r"\b"
    r"|\b(?i:according to)\s+(?:[A-Z][\w'’.-]*\s+)*?([A-Z][\w'’-]*)\b(?!\s+[A-Z])")
_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# A capitalised word after a space, or opening a quotation or parenthesis ("Parasite").
_NAME = re.compile(r"(?<=[\s\"“‘(\[])[A-Z][\w'’.-]*[\w]")
_REFUSAL = re.compile(
    r"\b(?:articles?|passages?|sources?|texts?|context|information)\b[^.]{0,40}?"
    r"\b(?:do(?:es)?|did)\s*n[o'’]?t\b[^.]{0,30}?\b(?:say|state|mention|contain|provide|answer|"
    r"specify|include|indicate|tell|give|discuss|address|have)"
    r"|\b(?:no|not enough|insufficient)\s+(?:specific\s+)?(?:information|mention|details?|data)\b"
    r"|\b(?:cannot|can ?not|can[’']t|unable to)\s+(?:answer|determine|find|tell|say|provide)\b"
    r"|\bnot\s+(?:mentioned|stated|specified|provided|given|available|say)\b", re.I)

DEFAULT_THRESHOLD = 0.5

Status = Literal["supported", "reattributed", "unsupported", "refusal"]


def is_refusal(text: str) -> bool:
    """Whether ``text`` says the passages do not answer."""
    return bool(_REFUSAL.search(text))


@dataclass
class Claim:
    """One generated sentence: its text without markers and the passages it cited."""

    text: str
    cited: list[int]
    invalid_markers: int = 0
    paragraph_break: bool = False


@dataclass
class CheckedSentence:
    """A claim after checking: which passages support it and where."""

    claim: Claim
    status: Status
    support: list[tuple[int, int, int, float]] = field(default_factory=list)
    """(passage index, start, end, score) of each kept citation, best first."""


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text).strip()
    # What separated removed markers: "2015 [1], [2], [3]." -> "2015,,." -> "2015."
    text = re.sub(r"[,;](?:\s*[,;])*\s*(?=[.!?]|$)", "", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = _ORDINAL_DAY.sub(r"\1", text)
    if re.match(r"[,;:]", text):  # what is left of "According to [1], the ..."
        text = text[1:].strip()
    if re.match(r"[a-z]+\b", text):  # "the film won" after a lead-in; "iPhone" stays
        text = text[:1].upper() + text[1:]
    return text


def split_claims(text: str, count: int) -> list[Claim]:
    """Sentences of a generated answer with their cited passage indices (0-based, valid only).

    Markers written after a sentence's full stop ("... radar. [1]") belong to that sentence.
    """
    if not MARKER.search(text):  # "passage 4", written by a model that forgot the brackets
        text = _BARE_REFERENCE.sub(
            lambda m: m.group()[:m.start(1) - m.start()] + f"[{m.group(1)}]"
            if 1 <= int(m.group(1)) <= count else m.group(), text)
    text = _ATTRIBUTION.sub(r"\1 ", _LEAD_IN.sub("", text))
    claims: list[Claim] = []
    previous_end = 0
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        gap = text[previous_end:start]
        previous_end = end
        lead = _LEADING_MARKERS.match(sentence)
        # "... radar. [1] Next" cites the radar sentence; "[1] A.\n[2] B." is a list.
        if lead and claims and not claims[-1].cited and not claims[-1].invalid_markers:
            numbers = [n for m in MARKER.finditer(lead.group()) for n in marker_numbers(m.group())]
            _add(claims[-1], numbers, count)
            sentence = sentence[lead.end():]
        numbers = [n for m in MARKER.finditer(sentence) for n in marker_numbers(m.group())]
        body = _tidy(MARKER.sub(" ", sentence))
        if not re.search(r"\w", body):
            if claims:
                _add(claims[-1], numbers, count)
            continue
        claim = Claim(body, [], paragraph_break="\n" in gap and bool(claims))
        _add(claim, numbers, count)
        claims.append(claim)
    return claims


def _add(claim: Claim, numbers: Sequence[int], count: int) -> None:
    for n in numbers:
        if not 1 <= n <= count:
            claim.invalid_markers += 1
        elif n - 1 not in claim.cited:
            claim.cited.append(n - 1)


def _other_year(claim: str, years: set[str]) -> bool:
    """Whether the claim states years, none of them the ones the question asks about."""
    stated = set(_YEAR.findall(claim))
    return bool(years and stated and not years & stated)


def _with_years(claim: str, source: str) -> str:
    """The claim with a year after each month and day its source sentence dates fully.

    "released on September 20 [1]", citing "released on September 20, 2019", becomes
    "released on September 20, 2019": the reader is not left to guess the year.
    """
    def complete(match: re.Match[str]) -> str:
        month, day = match.group(1)[:3], match.group(2)
        dated = re.search(rf"\b{month}[a-z]*\.?\s+{day}(?:st|nd|rd|th)?,?\s+({_YEAR.pattern})",
                          source, re.I)
        return f"{match.group()}, {dated.group(1)}" if dated else match.group()

    return _MONTH_DAY.sub(complete, claim)


def _speakers(claim: str) -> set[str]:
    """The surname of whoever the claim says said something ("Robert Gates has said ...")."""
    names = [m.group(1) or m.group(2) for m in _SPEAKER.finditer(claim)]
    return content_terms(" ".join(names))


def _near(passage: Passage, start: int, end: int, sentences: int = SPEAKER_WINDOW) -> str:
    """The headline and the sentences within ``sentences`` of the one at start:end.

    A quote's speaker is named in the sentence or next to it, so "Peskov said the Gabala site
    cannot substitute" is not supported by a passage in which Gates said it and Peskov spoke
    two sentences later.
    """
    spans = sentence_spans(passage.text) or [(0, len(passage.text))]
    at = next((i for i, (s, e) in enumerate(spans) if s <= start < e), 0)
    first, last = spans[max(0, at - sentences)][0], spans[min(len(spans) - 1, at + sentences)][1]
    return f"{passage.headline}\n{passage.text[first:last]}"


_WORD_TOKEN = re.compile(r"[A-Za-z][\w'’-]*")
_ACTS = re.compile(r"(?:ed|s)$|^(?:gave|met|won|took|made|told|led|sent|put|paid|went|came|"
                   r"threw|drove|wrote|ran|beat|chose|hit|brought|bought|sold|shot|held)$")


_RECEIVES = re.compile(r"^\W*(?:\S+\s+){0,6}?(?:was|were|is|are|been|being|received|receives|"
                       r"got|gets|accepted|accepts)\b", re.I)


def _proper(word: str, text: str) -> bool:
    """Whether ``word`` is a name in ``text``: written capitalised inside a sentence there."""
    return bool(re.search(rf"(?<![.!?\n]\s)(?<!^)(?<=\s){re.escape(word)}\b", text))


def _actors(sentence: str, text: str) -> tuple[set[str], set[str]]:
    """The name the sentence opens with when a verb follows it, and every such name in it.

    'Putin handed flowers ...' opens with Putin; in 'Bush has not responded, but Robert Gates
    has said ...' both act. Only names ``text`` capitalises mid-sentence count ("Seeking to
    ease ..., Putin" opens with no name), and a possessor ("Ripplenest's chief ...") does not.
    """
    words = _WORD_TOKEN.findall(sentence)
    opening: set[str] = set()
    every: set[str] = set()
    name: list[str] = []
    for i, word in enumerate(words):
        if word[0].isupper() and _proper(word, text) and not word.endswith(("'s", "’s")):
            name.append(word)
            continue
        if name and word.islower() and _ACTS.search(word):
            terms = content_terms(" ".join(name))
            every |= terms
            if len(name) == i:  # the run began the sentence
                opening = terms
        name = []
    return opening, every


def _acts_for_someone_else(claim: str, passage: Passage, start: int, end: int) -> bool:
    """Whether the claim gives the act of the sentence it rests on to another person.

    "The elder Bush gave flowers to Laura Bush" rests on "Putin handed flowers to ... Laura
    Bush": the sentence's actor (Putin) is not in the claim, and the claim's opening name
    (Bush) is someone else the sentence names. A claim naming the actor anywhere ("Laura Bush
    received flowers from Putin") is left alone.
    """
    sentence = passage.text[start:end]
    actor, actors = _actors(sentence, passage.text)
    if not actor or actor & content_terms(claim):
        return False
    if _RECEIVES.search(claim):
        return False  # "Laura Bush received flowers", "Bush was handed ...": not the actor
    opening = {w for w in _WORD_TOKEN.findall(claim)[:4] if w[0].isupper()}
    claimed = content_terms(" ".join(opening)) & content_terms(sentence)
    return bool(claimed) and not claimed & actors


def _month(match: re.Match[str]) -> str:
    """The full name of an abbreviated month ("Nov." -> "november")."""
    short = match.group(1).lower()[:3]
    return next(m for m in MONTHS if m.startswith(short))


def _numbers(text: str) -> set[str]:
    """Numbers as written, without thousands separators or a trailing ".0" ("1.0" is "1").

    Small numbers spelled out count as digits: "the fourth season" holds the 4 of "Season 4".
    """
    out = {n for n in spelled_numbers(text) if n.isdigit()}
    for number in _NUMBER.findall(text):
        number = number.replace(",", "").rstrip(".")
        out.add(re.sub(r"\.0+$", "", number) if "." in number else number)
    return out


_LIST_SEPARATOR = re.compile(r",\s*|\s+and\s+|\s*[.;]\s*$")


def repeats_itself(claim: str) -> bool:
    """Whether a list in the claim names one item twice: a small model's loop.

    "OpenAI was founded in 2015, 2023, 2023, 2015" states no date, however well each year is
    supported. The first piece holds the sentence before the list, so it is not an item.
    """
    items = [item.strip().lower() for item in _LIST_SEPARATOR.split(strip_markers(claim))]
    items = [item for item in items[1:] if item]
    return len(items) >= 2 and len(set(items)) < len(items)


def _not_what_was_asked(question: str, sentence: str) -> bool:
    """Whether ``sentence`` holds another kind of money, post, edition or ranking than asked."""
    return other_money(question, sentence) or about_something_else(question, sentence)


class CitationChecker:
    """Checks, repairs and renumbers the citations of a generated answer."""

    def __init__(self, scorer: EvidenceScorer, *, threshold: float = DEFAULT_THRESHOLD,
                 drop_unsupported: bool = True, check_answers: bool = True,
                 answer_floor: float = 0.0) -> None:
        self.scorer = scorer
        self.threshold = threshold
        self.drop_unsupported = drop_unsupported
        self.check_answers = check_answers
        self.answer_floor = answer_floor

    def support(self, claim: str, passage: Passage,
                question: str = "") -> tuple[bool, float, int, int]:
        """Whether ``passage`` supports ``claim``, the score, and its best sentence's span.

        Every number the claim states must be in the passage, and every name too. A passage
        that holds most of the names the question gives may leave out the rest ("Ceremony" of
        "the 92nd Academy Awards Ceremony"): those come from the asker, not from the model.
        """
        score, start, end = self.scorer.support(claim, passage)
        context = f"{passage.headline}\n{passage.published or ''}\n{passage.text}"
        if not _numbers(claim) <= _numbers(context):
            return False, score, start, end
        terms = content_terms(_MONTH_ABBREVIATION.sub(_month, context))
        asked = content_terms(" ".join(_NAME.findall(f" {question}")))
        if len(asked & terms) < 0.75 * len(asked):
            asked = set()  # not a passage about what was asked: no name goes unchecked
        speakers = _speakers(claim)
        if speakers and not speakers <= content_terms(_near(passage, start, end)):
            return False, score, start, end  # the words are there, said by someone else
        if _acts_for_someone_else(claim, passage, start, end):
            return False, score, start, end  # the act is there, done by someone else
        for name in content_terms(" ".join(_NAME.findall(claim))) - terms - asked:
            # "Russia" in the claim is fine when the passage says "Russian".
            if len(name) < 4 or not any(t.startswith(name) or name.startswith(t)
                                        for t in terms if len(t) >= 4):
                return False, score, start, end
        return score >= self.threshold, score, start, end

    @staticmethod
    def _foreign_link(text: str, passages: Sequence[Passage]) -> bool:
        """Whether ``text`` links anywhere but to the articles themselves."""
        sources = {p.source.rstrip("/") for p in passages}
        return any(m.group().rstrip("/.,;") not in sources for m in URL.finditer(text))

    def check_claim(self, claim: Claim, passages: Sequence[Passage],
                    question: str = "") -> CheckedSentence:
        """Keep the cited passages that support the claim, else find one that does."""
        text = claim.text
        cited = []
        for index in claim.cited:
            ok, score, start, end = self.support(text, passages[index], question)
            if ok:
                cited.append((index, start, end, score))
        if cited:
            cited.sort(key=lambda s: -s[3])
            return CheckedSentence(claim, "supported", cited)
        if is_refusal(text):
            return CheckedSentence(claim, "refusal")
        best: tuple[int, int, int, float] | None = None
        for index, passage in enumerate(passages):
            if index in claim.cited:
                continue
            ok, score, start, end = self.support(text, passage, question)
            if ok and (best is None or score > best[3]):
                best = (index, start, end, score)
        if best is not None:
            return CheckedSentence(claim, "reattributed", [best])
        return CheckedSentence(claim, "unsupported")

    def answers(self, question: str, item: CheckedSentence,
                passages: Sequence[Passage]) -> bool:
        """Whether a supported sentence answers ``question`` rather than a neighbouring one.

        A sentence can be in a passage without answering: passages about another year, person
        or event are on topic too. So it must state something of the kind asked for (a name, a
        number, a date) that the question does not already hold, and cite a passage that holds
        the numbers the question pins down (the year, season or quarter asked about). A sentence
        that says the articles do not answer is not an answer, whatever else it says.
        """
        if not self.check_answers:
            return True
        claim = item.claim.text
        if is_refusal(claim):  # "They don't say who won in 2019, but in 2017 ..." is a hedge
            return False
        return (claim_kind_match(expected_kind(question), claim, question)
                and any(meets_numbers(question, passages[index]) for index, *_ in item.support)
                and self.rests_on_an_answer(question, item, passages))

    def rests_on_an_answer(self, question: str, item: CheckedSentence,
                           passages: Sequence[Passage]) -> bool:
        """Whether a sentence the claim rests on is about what the question asks.

        It must score ``answer_floor`` against the question and hold what the question pins
        down. Support says the passage states the claim; this says the passage's sentence is about
        what was asked. A small model asked about a settlement the articles never mention
        writes, faithfully, about the fine they do mention: the fine's sentence is on topic
        but scores low against the question, as the extractive answerer scores sentences. Nor
        does a sentence answer "how much was it fined" with another sum (the clean-up bill),
        or "who was named permanent chief" with the interim one.
        """
        focus, context = split_follow_up(question)
        spans = {(index, start, end) for index, start, end, _ in item.support}
        resting = [passages[index].text[start:end] for index, start, end in spans]
        if all(_not_what_was_asked(focus, s) for s in resting):
            return False
        if self.answer_floor <= 0:
            return True
        return any(e.score >= self.answer_floor and not _not_what_was_asked(focus, e.text)
                   for e in self.scorer.score(focus, passages, context)
                   if any(e.passage == index and e.start < end and start < e.end
                          for index, start, end in spans))

    def check(self, text: str, question: str, passages: Sequence[Passage]) -> Draft:
        """The Draft for generated ``text``: verified sentences with renumbered citations."""
        years = set(_YEAR.findall(question))
        checked = [CheckedSentence(c, "unsupported")
                   if self._foreign_link(c.text, passages) or repeats_itself(c.text)
                   else self.check_claim(c, passages, question)
                   for c in split_claims(text, len(passages))]
        for item in checked:
            # A claim stating only other years than the question's ("In 2017 Froome won") is
            # about another event, unless the sentence it rests on names the year asked about
            # ("The 2018 prize went to Tokarczuk (born 1962)").
            if item.support and _other_year(item.claim.text, years) and not any(
                    years & set(_YEAR.findall(passages[i].text[start:end]))
                    for i, start, end, _ in item.support):
                item.status, item.support = "unsupported", []
            for index, start, end, _ in item.support:
                item.claim.text = _with_years(item.claim.text, passages[index].text[start:end])
        written = [c for c in checked if c.status != "refusal"]
        supported = [c for c in written if c.support]
        if not supported and (self.drop_unsupported or not written):
            return refusal(question)
        if supported and not any(self.answers(question, c, passages) for c in supported):
            return refusal(question)
        quotes = Quotes(passages)
        parts: list[str] = []
        for item in checked:
            if not item.support and (self.drop_unsupported or item.status == "refusal"):
                continue
            marks = "".join(dict.fromkeys(f"[{quotes.number(*support)}]"
                                          for support in item.support))
            separator = "\n\n" if item.claim.paragraph_break else " "
            parts.append((separator if parts else "") + item.claim.text
                         + (f" {marks}" if marks else ""))
        return Draft(text="".join(parts), citations=quotes.citations(),
                     supported_sentences=len(supported), total_sentences=len(written))


class MarkerFilter:
    """Streams generated text, holding back each ``[`` until its marker is complete.

    Markers that point at no passage are removed; valid ones are renumbered in order of first
    appearance, as the final answer numbers its citations.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.buffer = ""
        self.numbers: dict[int, int] = {}

    def _rewrite(self, token: str) -> str:
        if not MARKER.fullmatch(token):
            return token
        out = ""
        for n in marker_numbers(token):
            if 1 <= n <= self.count:
                self.numbers.setdefault(n, len(self.numbers) + 1)
                out += f"[{self.numbers[n]}]"
        return out

    def feed(self, piece: str) -> str:
        """The part of the text so far that is safe to show."""
        self.buffer += piece
        out: list[str] = []
        while self.buffer:
            opening = self.buffer.find("[")
            if opening < 0:
                out.append(self.buffer)
                self.buffer = ""
                break
            out.append(self.buffer[:opening])
            self.buffer = self.buffer[opening:]
            closing = self.buffer.find("]")
            if closing < 0:
                if len(self.buffer) > 24:  # too long to be a marker: let the bracket through
                    out.append("[")
                    self.buffer = self.buffer[1:]
                    continue
                break
            out.append(self._rewrite(self.buffer[: closing + 1]))
            self.buffer = self.buffer[closing + 1:]
        return "".join(out)

    def flush(self) -> str:
        """Whatever is left at the end, minus an unfinished marker."""
        rest, self.buffer = self.buffer, ""
        return "" if re.match(r"\[\s*(?:passage\s*)?\d", rest, re.I) else rest
