"""Hard-wrapped .txt/.md articles are read as whole sentences (ingest.wrapping)."""

from __future__ import annotations

from conftest import SEEDS

from ingest.loaders import load_file
from ingest.text import clean_text, sentence_spans
from ingest.wrapping import unwrap


def test_hard_wrapped_sentences_are_joined_and_lists_kept() -> None:
    wrapped = ("Dockers at Port Vellan returned to work on Monday after the harbour board\n"
               "agreed to hire forty more crane drivers, the union said. The strike had\n"
               "lasted eleven days.")
    joined = unwrap(wrapped)
    assert "\n" not in joined
    assert len(sentence_spans(joined)) == 2  # not four pieces cut at the line ends
    listing = "The board agreed to:\n- hire forty drivers\n- pay overtime"
    assert unwrap(listing) == listing
    assert unwrap("Short line\nAnother short line") == "Short line\nAnother short line"


def test_the_seed_article_is_unchanged_but_for_its_promo_line() -> None:
    seed = next(p for p in sorted(SEEDS.iterdir()) if p.suffix == ".txt")
    [article] = load_file(seed, 10_000_000).articles
    body = clean_text(seed.read_text(encoding="utf-8")).split("\n", 1)[1]
    assert "\nSupport TwoCircles\n" in body
    assert article.text == clean_text(body.replace("\nSupport TwoCircles\n", "\n")).strip()
