"""The `<id:...>` path converter: a row id in a page or websocket URL.

Django's `<int:...>` takes any number of digits, and a number beyond the database's 64-bit ids
fails inside the query (an overflow, a 500). An id has at most 18 digits here, so a longer
number matches no URL: 404, like any id that is no row.
"""

import re

from django.urls import register_converter
from django.urls.converters import get_converters

ID_DIGITS = "[0-9]{1,18}"  # 18 nines < 2**63 - 1
_ID = re.compile(ID_DIGITS)


class IdConverter:
    regex = ID_DIGITS

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def is_id(text: str) -> bool:
    """Whether `text` is an id as URLs take it (ASCII digits that fit the database)."""
    return _ID.fullmatch(text) is not None


def register() -> None:
    """Make `<id:...>` known to the URL patterns (the URL modules call it before their paths)."""
    if "id" not in get_converters():
        register_converter(IdConverter, "id")
