"""Prompt templates: Jinja2 files in ``prompts/``, rendered strictly (a missing variable fails).

``prompts/examples.json`` holds the worked examples shown to the model before the question.

The wheel carries the folder as ``rag/prompts`` (pyproject's force-include); a source checkout
reads the repository's ``prompts/`` directly.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2

EXAMPLES = "examples.json"

SUFFIX = ".j2"


def prompt_dir() -> Traversable:
    """The folder the templates are read from: packaged copy first, else the checkout's."""
    packaged = files("rag") / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "prompts"


def names() -> list[str]:
    """The names of every shipped template, without the suffix."""
    return sorted(item.name[: -len(SUFFIX)] for item in prompt_dir().iterdir()
                  if item.name.endswith(SUFFIX))


def _source(name: str) -> str:
    item = prompt_dir() / f"{name}{SUFFIX}"
    if not item.is_file():
        raise jinja2.TemplateNotFound(name)
    return item.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Plain-text Jinja2 (no HTML escaping) where an undefined variable is an error."""
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_source), undefined=jinja2.StrictUndefined,
        autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
    )


def render(name: str, **variables: Any) -> str:
    """Render the template ``prompts/<name>.j2`` with ``variables``."""
    return environment().get_template(name).render(**variables).strip()


def examples() -> list[dict[str, Any]]:
    """The worked examples: ``{"passages", "question", "reply"}`` each."""
    return list(_examples())


@lru_cache(maxsize=1)
def _examples() -> tuple[dict[str, Any], ...]:
    """Read once per process, like the templates: every answer's prompt starts with them."""
    return tuple(json.loads((prompt_dir() / EXAMPLES).read_text(encoding="utf-8")))
