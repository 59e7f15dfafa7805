"""The web app asks a kind what it is (webapp/jobs/kinds.py, trainer/kinds.py SHAPES) instead of
comparing its name: a new comparison against a kind's name (`kind == "detection"`,
`dataset.kind != Kind.CLASSIFICATION`, `{% if kind == "keypoints" %}`) outside the places
listed here fails this test. Give the kind a property (KindView, trainer.kinds.Shape) and read
that; where a comparison is truly about one kind, list the file here and say why."""

import ast
import re
from pathlib import Path

from django.template.loader import render_to_string

from trainer import kinds as trainer_kinds
from webapp.datasets.models import Dataset
from webapp.jobs import kinds

ROOT = Path(__file__).resolve().parents[2]
NAMES = set(trainer_kinds.KINDS)
CONSTANTS = {name.upper() for name in NAMES}  # kinds.DETECTION, Kind.KEYPOINTS

# file (from the repository root) → (at most this many comparisons, why they stay)
ALLOWED: dict[str, tuple[int, str]] = {
    "webapp/jobs/kinds.py": (2, "the module that answers for the kinds"),
    "webapp/poses/tasks.py": (1, "the pose page runs keypoints models only: it is that kind's"),
    "webapp/jobs/results.py": (
        2,
        "routes of one kind's pages: a classifier's confusion cell, a detector's images",
    ),
    "webapp/api/job_schemas.py": (
        1,
        "the API schema unions the trainer's per-kind spec classes' early stopping; "
        "classification's is the shared EarlyStopping, already in the union",
    ),
}


def _is_kind(node: ast.AST) -> bool:
    """A kind's name written out: "detection", or a constant such as Kind.DETECTION."""
    if isinstance(node, ast.Constant):
        return node.value in NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in CONSTANTS
    if isinstance(node, ast.Name):
        return node.id in CONSTANTS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_kind(element) for element in node.elts)
    return False


def python_comparisons(path: Path) -> list[int]:
    """The lines of a file where something is compared with a kind's name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(_is_kind(side) for side in (node.left, *node.comparators)):
                lines.append(node.lineno)
        elif isinstance(node, ast.match_case) and _is_kind(node.pattern):
            lines.append(node.pattern.lineno)
    return lines


_NAME = "|".join(sorted(NAMES))
TEMPLATE_COMPARISON = re.compile(
    rf"""(==|!=|\bin)\s*\(?\s*["']({_NAME})["']|["']({_NAME})["']\s*(==|!=|\bin\b)"""
)


def template_comparisons(path: Path) -> list[int]:
    text = path.read_text(encoding="utf-8")
    return [
        n
        for n, line in enumerate(text.splitlines(), 1)
        if "{%" in line and TEMPLATE_COMPARISON.search(line)
    ]


def _found() -> dict[str, list[int]]:
    found = {}
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = python_comparisons(path)
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    for path in sorted((ROOT / "templates").rglob("*.html")):
        lines = template_comparisons(path)
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    return found


def test_the_scanner_sees_comparisons_written_either_way(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "a = kind == 'detection'\n"
        "b = Kind.KEYPOINTS != dataset.kind\n"
        "c = kind in ('segmentation', 'keypoints')\n"
        "d = kinds.dataset_kind(x) == kinds.CLASSIFICATION\n"
        "e = shape.one_label_per_image\n"
        "f = {'detection': 1}.get(kind)\n"
        "g = row.kind == 'box'\n"
    )
    assert python_comparisons(source) == [1, 2, 3, 4]
    page = tmp_path / "x.html"
    page.write_text(
        '{% if dataset.kind == "segmentation" %}\n'
        '{% if s.kind == "box" %}\n'
        "{% if dataset.shape.has_keypoints %}\n"
        "<p>classification == what it is</p>\n"
    )
    assert template_comparisons(page) == [1]


def test_the_web_app_dispatches_on_a_kinds_properties_not_its_name():
    found = _found()
    unexpected = {
        path: lines for path, lines in found.items() if len(lines) > ALLOWED.get(path, (0, ""))[0]
    }
    assert not unexpected, (
        "These compare a kind's name; ask the kind instead (webapp/jobs/kinds.py: kinds.view(), "
        f"trainer/kinds.py: shape()), or list the file in ALLOWED with the reason: {unexpected}"
    )


def test_every_kind_has_a_row_in_each_table():
    assert set(trainer_kinds.SHAPES) == set(trainer_kinds.KINDS) == set(kinds.VIEWS)


def test_a_kinds_shape_says_what_its_data_is():
    shape = trainer_kinds.shape
    assert shape("classification").one_label_per_image
    assert not shape("classification").annotates_objects
    assert shape("detection").boxes_only and shape("detection").annotates_objects
    assert shape("segmentation").has_masks and not shape("segmentation").boxes_only
    assert shape("keypoints").has_keypoints and not shape("keypoints").has_masks
    assert shape("") == shape("a kind from a newer trainer") == shape("classification")
    assert Dataset(kind="segmentation").shape.has_masks


def test_a_kinds_view_gives_the_studio_and_labelling_their_words_and_tools():
    assert kinds.view("classification").tools == ()  # labelled on the grid
    assert kinds.view("segmentation").tools == ("polygon", "brush", "box")
    assert kinds.view("keypoints").tools[0] == "keypoints"
    assert str(kinds.view("detection").agreement) == "Mean IoU of the boxes"
    assert kinds.view("classification").assist_batch > kinds.view("detection").assist_batch
    assert "224×224" in str(kinds.view("classification").torchvision_help)
    assert "detectors" in str(kinds.view("keypoints").torchvision_help)


def test_the_brush_is_offered_for_a_kind_with_masks_only():
    def brush(kind):
        page = render_to_string(
            "studio/_brush.html", {"dataset": Dataset(kind=kind), "editable": True}
        )
        return "data-brush-controls" in page

    assert brush("segmentation")
    assert not brush("detection") and not brush("keypoints") and not brush("classification")
