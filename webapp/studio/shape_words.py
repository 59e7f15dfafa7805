"""The words of the polygon, brush and keypoint tools (static/js/studio/tools/), translated on
the server and merged into the canvas page's `studio.words` by webapp.studio.words."""

from django.utils.translation import gettext as _


def shape_words() -> dict[str, str]:
    """Each shape tool's keys on the `?` sheet and what its side panel says while it works."""
    return {
        "close-polygon": _("Close the polygon (or click its first point, or double-click)"),
        "cancel-polygon": _("Stop drawing the polygon"),
        "undo-vertex": _("Take back the last point while drawing"),
        "delete-vertex": _("Delete the chosen vertex of the selected polygon"),
        "polygon-inside": _("Add a point even over another polygon (to start one inside it)"),
        "keyname-Alt+click": _("Alt + click"),
        "keyname-Shift+click": _("Shift + click"),
        "brush-eraser": _("Switch between brush and eraser (the right button also erases)"),
        "brush-smaller": _("Smaller brush"),
        "brush-larger": _("Larger brush"),
        "fill-holes": _("Fill the holes of the mask"),
        "kp-visibility": _("Visible or occluded: the next point, or the chosen one"),
        "kp-skip": _("Skip the next point (absent)"),
        "kp-back": _("Take back the last point placed"),
        "kp-finish": _("Finish the person now (the points left are absent)"),
        "kp-absent": _("Make the chosen point absent"),
        "kp-next": _("Next: %(name)s"),
        "kp-start": _("Click on the image to place the first point, %(name)s."),
        "kp-visible": _("visible"),
        "kp-occluded": _("occluded"),
        "kp-absent-state": _("absent"),
        "kp-sigma-bad": _(
            "Point %(n)s (%(name)s): its OKS σ is a number above 0 and at most 1, or empty "
            "for the default."
        ),
    }
