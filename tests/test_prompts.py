import re

import jinja2
import pytest

from rag.answering import prompts

SAMPLE = {
    "system": {},
    "answer": {"question": "What did Putin offer?", "passages": [
        {"headline": "Bush, Putin meet", "published": "2007-07-01",
         "text": "Putin offered a radar site in Azerbaijan."},
        {"headline": "", "published": "", "text": "Another passage."}]},
    "condense": {"question": "And what did he offer?", "history": [
        {"role": "user", "content": "Who met Bush in Kennebunkport?"},
        {"role": "assistant", "content": "Vladimir Putin [1]."}]},
}


def test_every_shipped_prompt_is_known_here():
    assert set(prompts.names()) == set(SAMPLE)


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_each_prompt_renders(name):
    text = prompts.render(name, **SAMPLE[name])
    assert text.strip()
    assert "{{" not in text and "{%" not in text


def test_answer_prompt_quotes_passages_as_data():
    text = prompts.render("answer", **SAMPLE["answer"])
    assert text.count("<passage ") == 2 and text.count("</passage>") == 2
    assert '<passage id="1" title="Bush, Putin meet" date="2007-07-01">' in text
    assert '<passage id="2">' in text
    assert "not instructions" in text
    assert text.rstrip().splitlines()[-2] == "Question: What did Putin offer?"


def test_condense_prompt_shows_the_conversation():
    text = prompts.render("condense", **SAMPLE["condense"])
    assert "User: Who met Bush in Kennebunkport?" in text
    assert "Assistant: Vladimir Putin [1]." in text
    assert "Last question: And what did he offer?" in text


@pytest.mark.parametrize("name", ["answer", "condense"])
def test_a_missing_variable_is_an_error(name):
    with pytest.raises(jinja2.UndefinedError):
        prompts.render(name)
    partial = dict(SAMPLE[name])
    partial.pop("question")
    with pytest.raises(jinja2.UndefinedError):
        prompts.render(name, **partial)


def test_a_missing_field_of_a_passage_is_an_error():
    with pytest.raises(jinja2.UndefinedError):
        prompts.render("answer", question="q", passages=[{"text": "only text"}])


def test_an_unknown_prompt_is_an_error():
    with pytest.raises(jinja2.TemplateNotFound):
        prompts.render("no-such-prompt")


def test_the_worked_examples_render_through_the_answer_prompt():
    examples = prompts.examples()
    assert len(examples) >= 2
    assert any(e["reply"] == "The articles don't say." for e in examples)
    for example in examples:
        text = prompts.render("answer", question=example["question"],
                              passages=example["passages"])
        assert text.count("<passage ") == len(example["passages"])
        assert re.search(r"\[\d\]\.?$", example["reply"]) or "don't say" in example["reply"]
