"""Filters of the result pages: fractions as percentages, heat-map shades."""

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.9723 → "97.2%" ("—" when unknown)."""
    if value is None or value == "":
        return "—"
    # number_format cuts digits off (2/3 → 66.6); rounding first gives 66.7, as the live page does.
    return f"{number_format(round(float(value) * 100, int(digits)), int(digits))}%"


@register.filter
def number(value, digits: int = 4) -> str:
    """A metric with a fixed number of decimals ("—" when unknown)."""
    if value is None or value == "":
        return "—"
    return number_format(round(float(value), int(digits)), int(digits))


@register.filter
def getitem(sequence, index):
    """sequence[index] in a template, or None."""
    try:
        return sequence[index]
    except (IndexError, KeyError, TypeError):
        return None


@register.simple_tag
def chart_series() -> list[dict]:
    """Every epoch figure a chart may draw, in the reader's language: its key, its name, whether
    it is a share (drawn as %) and a chart title (webapp/jobs/kinds.SERIES: one list for every
    kind, so a new kind's figures are named where its view is)."""
    from django.utils.translation import gettext as _

    from webapp.jobs import kinds

    return [
        {
            "key": key,
            "label": str(series.label),
            "percent": series.format == kinds.PERCENT,
            "title": kinds.sentence(_("%(metric)s per epoch") % {"metric": series.label}),
        }
        for key, series in kinds.SERIES.items()
    ]
