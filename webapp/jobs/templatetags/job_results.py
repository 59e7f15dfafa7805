"""Filters of the result pages: fractions as percentages, heat-map shades."""

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.9723 → "97.2%" ("—" when unknown)."""
    if value is None or value == "":
        return "—"
    return f"{number_format(float(value) * 100, int(digits))}%"


@register.filter
def number(value, digits: int = 4) -> str:
    """A metric with a fixed number of decimals ("—" when unknown)."""
    if value is None or value == "":
        return "—"
    return number_format(float(value), int(digits))


@register.filter
def getitem(sequence, index):
    """sequence[index] in a template, or None."""
    try:
        return sequence[index]
    except (IndexError, KeyError, TypeError):
        return None
