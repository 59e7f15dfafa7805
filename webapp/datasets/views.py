"""Dataset pages: the class's datasets, one dataset, its gallery, one image, the files."""

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from trainer.kinds import shape
from webapp.accounts import permissions
from webapp.accounts.course_views import course_for
from webapp.datasets import actions, dedup, queries, quota, splits
from webapp.datasets.dedup import PALETTE
from webapp.datasets.models import Dataset, Item, Kind, Split, Status, Visibility
from webapp.datasets.samples import SAMPLES

PAGE_SIZE = 120  # gallery tiles per page
DATASETS_PER_PAGE = 50
CLASSES_PER_PAGE = 50  # class bars and split rows on the dataset page
CLASS_CHOICES = 100  # above this many classes, forms take a typed class name, not a list
SHAPES_SHOWN = 500  # annotations drawn on an image's page
TILE_SHAPES = 30  # annotations drawn over one thumbnail
PREVIEW_ITEMS = 8  # thumbnails with their shapes on the page of a dataset with annotations


def _dataset_for(request, dataset_id: int, check=permissions.can_view_dataset) -> Dataset:
    """Return the dataset if the check allows; 404 when it may not even be seen."""
    dataset = Dataset.objects.select_related("course", "owner").filter(pk=dataset_id).first()
    if dataset is None or not permissions.can_view_dataset(request.user, dataset):
        raise Http404
    if not check(request.user, dataset):
        raise PermissionDenied
    return dataset


@login_required
def course_datasets(request, course_id: int):
    course = course_for(request, course_id, permissions.can_view_course)
    visible = (
        permissions.visible_datasets(request.user, course)
        .select_related("owner", "course")
        .defer("report")  # up to 5,000 refused files each: only a dataset's own page shows them
    )
    page = Paginator(visible.order_by("-created_at", "-pk"), DATASETS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    datasets = list(page)
    for dataset in datasets:
        dataset.owner_visible = permissions.can_see_dataset_owner(request.user, dataset)
    may_hand_out = permissions.can_view_roster(request.user, course)
    if may_hand_out:  # flag to teachers every dataset that overlaps a hidden test set
        for dataset in datasets:
            dataset.leak_count = dedup.leak_count(request.user, dataset)
    return render(
        request,
        "datasets/list.html",
        {
            "course": course,
            "datasets": datasets,
            "page": page,
            "samples": [
                {**s.in_language(get_language()), "kind_label": Kind(s.kind).label}
                for s in SAMPLES.values()
            ],
            "kinds": Kind.choices,
            "visibilities": [
                (value, label)
                for value, label in Visibility.choices
                if may_hand_out or value in ("private", "shared")
            ],
            "can_upload": permissions.can_create_dataset(request.user, course)
            and permissions.course_is_writable(course),
            "storage": quota.storage_use(request.user, course),
            "datasets_left": quota.datasets_left(request.user, course),
            "upload_text": {
                "picked": _("%(count)s files, %(size)s MB"),
                "needClass": _("Give a class name for the files dropped without a folder."),
                "nothing": _("Choose or drop a ZIP, files or a folder first."),
                "packing": _("Packing…"),
            },
        },
    )


@login_required
@require_POST
def copy_sample(request, course_id: int):
    course = course_for(request, course_id, permissions.can_create_dataset)
    try:
        dataset = actions.copy_sample(request.user, course, request.POST.get("sample", ""))
    except actions.DatasetError as exc:
        messages.error(request, exc.message)
        return redirect("course_datasets", course_id=course.pk)
    return redirect("dataset_detail", dataset_id=dataset.pk)


def _detail_context(request, dataset: Dataset) -> dict:
    full = permissions.can_view_images(request.user, dataset)
    classes = queries.class_counts(dataset)
    top = max([c["count"] for c in classes], default=0) or 1  # classes may all be empty
    shown = Paginator(classes, CLASSES_PER_PAGE).get_page(request.GET.get("classes"))
    version = dataset.versions.filter(number=dataset.head).first()
    return {
        "dataset": dataset,
        "course": dataset.course,
        "full": full,
        "owner_visible": permissions.can_see_dataset_owner(request.user, dataset),
        "can_edit": permissions.can_edit_dataset(request.user, dataset)
        and permissions.course_is_writable(dataset.course),
        "classes": [{**c, "percent": round(100 * c["count"] / top)} for c in shown],
        "class_page": shown,
        "class_total": len(classes),
        "class_choices": classes if len(classes) <= CLASS_CHOICES else None,
        "num_images": queries.image_count(dataset),
        "sample": _sample_of(dataset),
        "version": version,
        "versions": dataset.versions.all()[:20] if full else [],
        "split_rows": _split_rows(version, shown) if full and version else [],
        "report": dataset.report or {},
        "is_staff_view": permissions.can_view_roster(request.user, dataset.course),
        "can_train": dataset.trainable
        and dataset.status == Status.READY
        and permissions.course_is_writable(dataset.course)
        and permissions.can_train_on(request.user, dataset),
        "untrainable": dataset.status == Status.READY and not dataset.trainable,
        "jobs": [
            job
            for job in dataset.jobs.select_related("owner", "course").defer("result")[:10]
            if permissions.can_view_job(request.user, job)
        ],
    }


def _sample_of(dataset: Dataset) -> dict | None:
    """The built-in sample a dataset was copied from, named in the reader's language.

    The copy keeps the name it was given (in its copier's language, one name for the whole
    class); the sample it came from is named in whatever language the reader uses.
    """
    key = dataset.source.removeprefix("sample:") if dataset.source.startswith("sample:") else ""
    sample = SAMPLES.get(key)
    return sample.in_language(get_language()) if sample else None


def _split_rows(version, classes) -> list[dict]:
    """Images per class in each split, as the version counted them."""
    counts = version.counts or {}
    return [
        {"name": c["name"], **{s: counts.get(s, {}).get(c["name"], 0) for s in Split.values}}
        for c in classes
    ]


@login_required
def dataset_detail(request, dataset_id: int):
    dataset = _dataset_for(request, dataset_id)
    context = _detail_context(request, dataset)
    if context["full"] and dataset.status == Status.READY:
        context["duplicates"] = dedup.duplicates_in(dataset)
        context["leaks"] = dedup.leak_summary(request.user, dataset)
        if shape(dataset.kind).annotates_objects:  # what the labels are is the point: show some
            preview = queries.items_at(dataset).select_related("image").order_by("id")
            context["preview"] = list(preview[:PREVIEW_ITEMS])
            _add_shapes(dataset, context["preview"])
    # Students: the same notice on every dataset of a class with a hidden test set, never one
    # that depends on their images (see dedup.leak_summary).
    context["test_set_notice"] = (
        not context["is_staff_view"]
        and dataset.visibility != Visibility.HIDDEN_TEST
        and dedup.has_hidden_test(dataset.course)
    )
    return render(request, "datasets/detail.html", context)


@login_required
def dataset_status(request, dataset_id: int):
    """The status card alone: polled by HTMX while the dataset is processing."""
    dataset = _dataset_for(request, dataset_id)
    response = render(request, "datasets/_status.html", _detail_context(request, dataset))
    if dataset.status != Status.PROCESSING:
        response["HX-Refresh"] = "true"  # done: reload the whole page once
    return response


@login_required
def gallery(request, dataset_id: int):
    dataset = _dataset_for(request, dataset_id, permissions.can_view_images)
    split = request.GET.get("split", "")
    category = request.GET.get("class", "")
    names = queries.category_names(dataset)
    typed = request.GET.get("class_name", "").strip()
    if typed and not category:  # a class typed by name, when there are too many to list
        category = next((str(i) for i, name in names.items() if name == typed), "none")
    items = queries.filter_items(queries.items_at(dataset), dataset, split, category)
    paginator = Paginator(items.select_related("image").order_by("id"), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    for item in page:
        item.label = names.get(item.category_index, "")
    _add_shapes(dataset, list(page))
    return render(
        request,
        "datasets/gallery.html",
        {
            "dataset": dataset,
            "course": dataset.course,
            "page": page,
            "categories": _choices(names),
            "class_name": typed,
            "split": split,
            "category": category,
            "can_edit": permissions.can_edit_dataset(request.user, dataset)
            and permissions.course_is_writable(dataset.course),
        },
    )


def _add_shapes(dataset: Dataset, items: list[Item]) -> None:
    """Give each item of a page of thumbnails the shapes to draw over it (boxes, polygons,
    keypoints) and its number of objects; classification items have none."""
    if shape(dataset.kind).one_label_per_image or not items:
        return
    categories = queries.categories_at(dataset)
    names = {c.index: c.name for c in categories}
    keypoint_names = next((c.keypoints for c in categories if c.keypoints), [])
    skeleton = next((c.skeleton for c in categories if c.skeleton), [])
    annotations, counts = queries.first_annotations([i.pk for i in items], TILE_SHAPES)
    for item in items:
        item.shapes = dedup.overlay_shapes(
            annotations.get(item.pk, []), names, keypoint_names, skeleton
        )
        item.objects = counts.get(item.pk, 0)
        item.object_names = sorted(
            {names.get(a.category_index, "?") for a in annotations.get(item.pk, [])}
        )


def _choices(names: dict[int, str]) -> list[dict] | None:
    """Classes to choose from a list; None when there are too many to list (type a name)."""
    if len(names) > CLASS_CHOICES:
        return None
    return [{"index": index, "name": name} for index, name in names.items()]


def _item_for(request, dataset_id: int, item_id: int) -> tuple[Dataset, Item]:
    dataset = _dataset_for(request, dataset_id, permissions.can_view_images)
    item = Item.objects.select_related("image").filter(pk=item_id, dataset=dataset).first()
    if item is None:
        raise Http404
    return dataset, item


@login_required
def item_detail(request, dataset_id: int, item_id: int):
    dataset, item = _item_for(request, dataset_id, item_id)
    categories = queries.categories_at(dataset)
    names = {c.index: c.name for c in categories}
    keypoint_names = next((c.keypoints for c in categories if c.keypoints), [])
    skeleton = next((c.skeleton for c in categories if c.skeleton), [])
    annotations = list(item.annotations.all()[:SHAPES_SHOWN])
    return render(
        request,
        "datasets/item.html",
        {
            "dataset": dataset,
            "course": dataset.course,
            "item": item,
            "label": names.get(item.category_index),
            "shapes": dedup.overlay_shapes(annotations, names, keypoint_names, skeleton),
            "legend": _legend(annotations, names),
            "objects": item.annotations.count(),
            "shapes_shown": SHAPES_SHOWN,
            "leaks": dedup.item_leaks(request.user, dataset, item),
        },
    )


def _legend(annotations, names: dict[int, str]) -> list[dict]:
    """The classes drawn on an image's page, with their colour and how many objects each."""
    counts = Counter(a.category_index for a in annotations)
    return [
        {"name": names.get(index, "?"), "color": PALETTE[index % len(PALETTE)], "count": n}
        for index, n in sorted(counts.items())
    ]


def _serve(name: str, content_type: str, download_name: str | None = None) -> FileResponse:
    """Send a stored file with the type checked at ingest; never sniffed, never rendered."""
    response = FileResponse(
        default_storage.open(name, "rb"),
        content_type=content_type,
        as_attachment=download_name is not None,
        filename=download_name or "",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _pixels_for(request, dataset_id: int, item_id: int) -> Item:
    """An image's pixels: for who may view the dataset's images, and for a student given that
    image in a labelling assignment (a teacher's private pool shows them only those)."""
    dataset = Dataset.objects.select_related("course").filter(pk=dataset_id).first()
    item = (
        Item.objects.select_related("image").filter(pk=item_id, dataset=dataset).first()
        if dataset
        else None
    )
    if item is None:
        raise Http404
    if permissions.can_view_images(request.user, dataset):
        return item
    from webapp.labelling.access import is_assigned

    if is_assigned(request.user, dataset, item.uid):
        return item
    if permissions.can_view_dataset(request.user, dataset):
        raise PermissionDenied
    raise Http404


@login_required
def item_image(request, dataset_id: int, item_id: int):
    item = _pixels_for(request, dataset_id, item_id)
    image = item.image
    download = None
    if request.GET.get("download"):
        extension = "png" if image.content_type == "image/png" else "jpg"
        download = f"image-{item.pk}.{extension}"
    return _serve(image.file, image.content_type, download)


@login_required
def item_thumb(request, dataset_id: int, item_id: int):
    item = _pixels_for(request, dataset_id, item_id)
    image = item.image
    content_type = image.content_type if image.thumb == image.file else "image/jpeg"
    return _serve(image.thumb, content_type)


def _class_index(dataset: Dataset, post, field: str) -> int:
    """A class chosen from a list (its index) or, with many classes, typed by name."""
    if post.get(field, "").isdigit():
        return int(post[field])
    name = post.get(f"{field}_name", "").strip()
    if not name:
        raise KeyError(field)
    for category in queries.categories_at(dataset):
        if category.name == name:
            return category.index
    raise actions.DatasetError(
        _("This dataset has no class called “%(name)s”; check the spelling.") % {"name": name}
    )


@login_required
@require_POST
def edit(request, dataset_id: int):
    """The forms of the dataset and gallery pages; each change becomes a new version."""
    dataset = _dataset_for(request, dataset_id, permissions.can_edit_dataset)
    post = request.POST
    op = post.get("op", "")
    items = [int(i) for i in post.getlist("items") if i.isdigit()]
    try:
        if op == "relabel":
            actions.relabel(dataset, request.user, items, post.get("category", ""))
        elif op == "move":
            actions.move(dataset, request.user, items, post.get("split", ""))
        elif op == "delete":
            actions.delete_items(dataset, request.user, items)
        elif op == "rename_class":
            index = _class_index(dataset, post, "index")
            actions.rename_category(dataset, request.user, index, post.get("name", ""))
        elif op == "merge_classes":
            source = _class_index(dataset, post, "source")
            target = _class_index(dataset, post, "target")
            actions.merge_categories(dataset, request.user, source, target)
        elif op == "resplit":
            settings = splits.SplitSettings(
                val=float(post.get("val", 20)) / 100,
                test=float(post.get("test", 0)) / 100,
                seed=int(post.get("seed", 0)),
                folds=int(post.get("folds", 0) or 0),
            )
            actions.resplit(dataset, request.user, settings)
        elif op == "visibility":
            if not permissions.can_create_dataset(
                request.user, dataset.course, post.get("visibility", "")
            ):
                raise PermissionDenied
            actions.set_visibility(dataset, post.get("visibility", ""))
        else:
            raise actions.DatasetError(_("Unknown change."))
        messages.success(request, _("Saved as a new version."))
    except actions.DatasetError as exc:
        messages.error(request, exc.message)
    except (KeyError, ValueError):
        messages.error(request, _("Some fields are missing or not numbers."))
    back = post.get("back", "")
    if back.startswith(f"/datasets/{dataset.pk}/"):
        return redirect(back)
    return redirect("dataset_detail", dataset_id=dataset.pk)
