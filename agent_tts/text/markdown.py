"""Removing Markdown syntax from LLM output so that only its words are read."""

from __future__ import annotations

import re

# A fence line only: at a line's start (up to 3 spaces in), a backtick fence's info string without backticks
# (CommonMark). Triple backticks anywhere else are an inline code span, not a fence.
_CODE_FENCE = re.compile(r"^[ \t]{0,3}(?:`{3,}[^`\n]*|~{3,}[^\n]*)$\n?", re.M)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.M)
_BULLET = re.compile(r"^[ \t]*[-*+][ \t]+", re.M)
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.M)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)(.+?)(?<=\S)\1")
_SINGLE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_(?=\S)(.+?)(?<=\S)_(?![A-Za-z0-9])")
_INLINE_CODE = re.compile(r"`+([^`]*)`+")
_TABLE_BAR = re.compile(r"[ \t]*\|[ \t]*")


def strip_markdown(text: str) -> str:
    """Text without Markdown marks: headings, emphasis, code fences, links (their text stays), bullets, quotes."""
    if not any(mark in text for mark in "#*_`[>|-+~"):
        return text
    text = _CODE_FENCE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _SINGLE_UNDERSCORE.sub(r"\1", text)
    text = _INLINE_CODE.sub(r"\1", text)
    return _TABLE_BAR.sub(" ", text)
