"""Line wraps: PDF text breaks every line of a paragraph; they are joined back.

An e-mailed or wire-formatted text wraps its paragraphs at a fixed width; every line break
would end a sentence, so one sentence would be judged, quoted and cited as two halves.
"""

from __future__ import annotations

import re

_WRAPPED_MIN_CHARS = 50  # a line this long that ends mid-paragraph was wrapped
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s")


def unwrap(paragraph: str) -> str:
    """Join the hard-wrapped lines of one paragraph; lists and short lines stay as they are."""
    lines = paragraph.split("\n")
    if len(lines) < 2:
        return paragraph
    out = [lines[0]]
    for line in lines[1:]:
        previous = out[-1]
        wrapped = (len(previous) >= _WRAPPED_MIN_CHARS and not previous.rstrip().endswith(":")) \
            or (not re.search(r"[.!?:;\"”’)]$", previous.rstrip()) and line[:1].islower())
        if wrapped and line.strip() and not _BULLET.match(line):
            out[-1] = previous.rstrip() + " " + line.lstrip()
        else:
            out.append(line)
    return "\n".join(out)
