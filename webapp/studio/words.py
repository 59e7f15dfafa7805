"""The words the studio's scripts show, translated on the server (`studio.words[key]` in JS).

One dict per part: the canvas core, and the tools' names and the box tool's keys here; the
shape tools' words in shape_words.py. Placeholders are `%(name)s`, filled in by the scripts.
"""

from django.utils.translation import gettext as _

from webapp.studio.shape_words import shape_words


def core_words() -> dict[str, str]:
    """The canvas, its keys, the side panel, the autosave and the draft bar."""
    return {
        "proposal-short": _("proposal"),
        "keys-studio": _("Studio"),
        "keys-key": _("Key"),
        "keys-action": _("What it does"),
        "key-help": _("Show this sheet"),
        "key-undo": _("Undo"),
        "key-redo": _("Redo"),
        "key-class": _("Choose a class (the selected object's, and the next one's)"),
        "key-cycle": _("Select the next / previous object"),
        "key-deselect": _("Select nothing (or stop drawing)"),
        "key-delete": _("Delete the selected object (reject a proposal)"),
        "key-accept": _("Accept the selected proposal"),
        "key-next": _("Next image (→ when nothing is selected)"),
        "key-previous": _("Previous image (← when nothing is selected)"),
        "key-zoom": _("Zoom in / out"),
        "key-fit": _("Fit the image in view"),
        "key-wheel": _("Zoom about the pointer"),
        "key-pan": _("Move the view (or drag with the middle button)"),
        "key-touch": _("Two fingers: zoom and move the view"),
        "keyname-drag": _("drag"),
        "keyname-click": _("Click"),
        "keyname-wheel": _("wheel"),
        "keyname-pinch": _("pinch"),
        "keyname-Space+drag": _("Space + drag"),
        "object-box": _("box %(x)s, %(y)s, %(w)s × %(h)s"),
        "object-mask": _("mask"),
        "object-polygon": _("polygon"),
        "help-box": _(
            "Drag on the image to draw a box; click one to select it. Number keys choose the "
            "class. Press ? for every key."
        ),
        "help-polygon": _(
            "Click to add points; click the first point, press Enter or double-click to close. "
            "Drag a point to move it. Press ? for every key."
        ),
        "help-brush": _(
            "Paint the selected class's mask; the right button or E erases, [ and ] change the "
            "size. Press ? for every key."
        ),
        "help-keypoints": _(
            "Click to place the named point; V marks it hidden, N absent. Press ? for every key."
        ),
        "object-keypoints": _("keypoints"),
        "object-proposal": _("proposal, score %(score)s"),
        "objects-more": _("%(count)s more objects are not listed."),
        "save-saved": _("Saved"),
        "save-saving": _("Saving…"),
        "save-offline": _("Offline — your changes are kept and sent when the connection is back"),
        "save-conflict": _("Conflict: choose which version to keep"),
        "save-error": _("Not saved — sign in again or reload the page"),
        "save-readonly": _("Read only"),
        "others-editing": _("Also editing this image: %(names)s"),
        "conflict-someone": _("someone else"),
        "conflict-changed": _("%(what)s was changed by %(who)s after you started."),
        "conflict-deleted": _("%(what)s was deleted by %(who)s after you started."),
        "conflict-theirs": _("Their version"),
        "keep-mine": _("Keep mine"),
        "take-theirs": _("Take theirs"),
        "kept-mine": _("Your version is kept."),
        "took-theirs": _("Their version is shown now."),
        "resolve-failed": _("The conflict could not be resolved; try again."),
        "refused": _("A change was not saved"),
        "load-failed": _("The image could not be loaded. Check the connection and try again."),
        "queue-end": _("This is the last image."),
        "queue-start": _("This is the first image."),
        "class-added": _("Class “%(name)s” added."),
        "class-not-added": _("The class could not be added (are you online?)."),
        "commit-message-needed": _("Write a short message saying what you changed."),
        "commit-saving": _("Saving…"),
        "commit-unsaved": _("Some changes are not saved yet (offline?); try again in a moment."),
        "committed": _("Version %(n)s committed."),
        "commit-conflicts": _("These objects were changed by someone else; resolve them first:"),
        "commit-failed": _("The version could not be saved."),
        "discarded": _("The draft was discarded."),
        "discard-failed": _("The draft could not be discarded."),
    }


def tool_words() -> dict[str, str]:
    """Each tool's name and the words of its keys on the `?` sheet."""
    return {
        "tool-box": _("Box"),
        "key-box-tool": _("Box tool"),
        "key-box-draw": _("Draw a box (drag the selected box to move it, its handles to resize)"),
        "key-box-select": _("Select the box under the pointer"),
        "key-box-nudge": _("Move the selected box by one pixel"),
        "key-box-nudge-more": _("Move the selected box by ten pixels"),
        "tool-polygon": _("Polygon"),
        "tool-brush": _("Brush"),
        "tool-keypoints": _("Keypoints"),
    }


def studio_words() -> dict[str, str]:
    """Every word of the canvas page's scripts, in the request's language."""
    return {**core_words(), **tool_words(), **shape_words()}
