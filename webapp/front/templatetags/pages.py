"""Paging of long lists: a link to another page that keeps the rest of the query string."""

from django import template
from django.core.paginator import Page

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context, number: int, param: str = "page", path: str = "") -> str:
    """`?...&param=number` for the current request (other parameters kept), prefixed by path."""
    query = context["request"].GET.copy()
    query[param] = number
    query.pop("_", None)  # HTMX cache-busting, never worth repeating
    return f"{path}?{query.urlencode()}"


@register.inclusion_tag("_pager.html", takes_context=True)
def pager(context, page: Page, param: str = "page", path: str = ""):
    """Previous / "page n of N" / next, for a list longer than one page (nothing otherwise).

    `path` sends the links to another address: a live partial links to its whole page.
    """
    return {"request": context["request"], "page": page, "param": param, "path": path}
