"""Assignment descriptions: Markdown rendered to HTML, then sanitised (no scripts, safe links)."""

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

EXTENSIONS = ["fenced_code", "tables", "sane_lists"]
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> SafeString:
    """HTML of a teacher's Markdown, safe to show: nh3 keeps only harmless tags and attributes."""
    html = markdown.markdown(text or "", extensions=EXTENSIONS, output_format="html")
    # nh3 drops <script>/<style> with their content, event handlers, javascript: URLs; every
    # link gets rel="noopener noreferrer", so a linked page cannot reach back into Manabi.
    return mark_safe(  # noqa: S308 - sanitised by nh3 just here
        nh3.clean(html, url_schemes=URL_SCHEMES, link_rel="noopener noreferrer")
    )
