"""Every change to datasets: uploads, samples, edits (each a new version). Write, commit, send."""

from collections.abc import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from trainer import limits
from trainer.kinds import shape
from webapp.accounts import permissions
from webapp.accounts.models import Course, User
from webapp.datasets import quota, splits, tasks
from webapp.datasets.ingest import count_items, write_assignment
from webapp.datasets.models import (
    Annotation,
    Category,
    Dataset,
    DraftChange,
    Item,
    Kind,
    Status,
    Upload,
    Version,
    Visibility,
)
from webapp.datasets.records import sigmas_problem
from webapp.datasets.samples import SAMPLES
from webapp.errors import Refused

MAX_KEYPOINT_SOURCES = 100  # a class's keypoints (drafts.MAX_KEYPOINTS)


class DatasetError(Refused):
    """A refused change to a dataset or an upload."""


class NotFound(DatasetError):
    status = 404


class QuotaExceeded(DatasetError):
    status = 413


class TooLarge(DatasetError):
    status = 413


class Conflict(DatasetError):
    status = 409


class TooManyDatasets(DatasetError):
    status = 409


def _quota_message(left: int) -> str:
    return _(
        "Your storage quota in this class is full: %(left)s MB left. Delete datasets you no "
        "longer need, or ask your teacher for more space."
    ) % {"left": left // quota.MB}


def _check_dataset_count(user: User, course: Course) -> None:
    """A student owns at most MAX_DATASETS_PER_STUDENT datasets in a class (staff: no limit)."""
    left = quota.datasets_left(user, course)
    if left is not None and left <= 0:
        raise TooManyDatasets(
            _(
                "You already have %(limit)s datasets in this class, the most a student may "
                "have. Keep working in one of them, or ask your teacher."
            )
            % {"limit": settings.MAX_DATASETS_PER_STUDENT},
        )


def _lock_owner(user: User) -> None:
    """Serialise one user's dataset creations, so two at once cannot both pass the count."""
    User.objects.select_for_update().filter(pk=user.pk).exists()


def _check_room(user: User, course: Course, size: int) -> None:
    if size > settings.UPLOAD_MAX_BYTES:
        raise TooLarge(
            _("The file is %(size)s MB; the largest upload is %(limit)s MB.")
            % {"size": size // quota.MB, "limit": settings.UPLOAD_MAX_BYTES // quota.MB},
            field="file",
        )
    left = quota.storage_left(user, course)
    if left is not None and size > left:
        raise QuotaExceeded(_quota_message(left), field="file")


def kind_of(kind: str | None, task: str | None) -> str:
    """The kind a request asks for: `kind`, or `task`, its deprecated old name (API v1 clients
    written before issue 11 send it). Both sent and different: refused, naming `task`."""
    if kind and task and kind != task:
        raise DatasetError(
            _("“kind” and its old name “task” disagree; send only “kind”."), field="task"
        )
    return kind or task or ""


def _validate_new(name: str, kind: str, visibility: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DatasetError(_("Give the dataset a name."), field="name")
    if kind not in Kind.values:
        raise DatasetError(
            _("Choose a kind: classification, detection, segmentation or keypoints."), field="kind"
        )
    if visibility not in Visibility.values:
        raise DatasetError(_("Unknown visibility."), field="visibility")
    return name[:200]


def start_upload(user: User, course: Course, file_name: str, size: int) -> Upload:
    """Open a chunked upload after checking its declared size against the limits and quota."""
    permissions.require_writable(course)
    if size <= 0:
        raise DatasetError(_("The file is empty."), field="file")
    _check_dataset_count(user, course)  # before any byte is sent; checked again at the end
    _check_room(user, course, size)
    return Upload.objects.create(owner=user, course=course, file_name=file_name[:255], size=size)


def receive_chunk(upload: Upload, offset: int, data: bytes) -> Upload:
    """Store one chunk at its offset. Resuming sends the chunk that starts at `received`."""
    permissions.require_writable(upload.course)
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload.pk)
        if upload.completed_at is not None:
            raise Conflict(_("This upload is already complete."))
        if offset != upload.received:
            raise Conflict(
                _("Expected the chunk at byte %(expected)s; resume from there.")
                % {"expected": upload.received}
            )
        if upload.received + len(data) > upload.size:
            raise DatasetError(_("More data arrived than the file's declared size."))
        left = quota.storage_left(upload.owner, upload.course)
        if left is not None and len(data) > left:
            raise QuotaExceeded(_quota_message(left))
        default_storage.save(f"{upload.storage_dir}/{offset:015d}.part", ContentFile(data))
        upload.received += len(data)
        upload.save(update_fields=["received"])
    return upload


@transaction.atomic
def complete_upload(
    upload: Upload, name: str, kind: str, visibility: str = Visibility.PRIVATE
) -> Dataset:
    """Turn a fully received upload into a dataset and queue its ingest."""
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    permissions.require_writable(upload.course)
    name = _validate_new(name, kind, visibility)
    if upload.received != upload.size:
        raise Conflict(
            _("Only %(received)s of %(size)s bytes arrived; send the rest first.")
            % {"received": upload.received, "size": upload.size}
        )
    if upload.completed_at is not None:
        raise Conflict(_("This upload was already turned into a dataset."))
    _lock_owner(upload.owner)
    _check_dataset_count(upload.owner, upload.course)
    upload.completed_at = timezone.now()
    upload.save(update_fields=["completed_at"])
    dataset = Dataset.objects.create(
        course=upload.course,
        owner=upload.owner,
        name=name,
        kind=kind,
        visibility=visibility,
        source="upload",
        report={"file": upload.file_name},
    )
    language = translation.get_language() or settings.LANGUAGE_CODE
    transaction.on_commit(lambda: tasks.ingest_upload.delay(dataset.pk, str(upload.pk), language))
    return dataset


def upload_file(user, course, file, name, kind, visibility=Visibility.PRIVATE) -> Dataset:
    """A single-request upload (the API's multipart POST): one chunk, then complete."""
    upload = start_upload(user, course, getattr(file, "name", "upload.zip"), file.size)
    offset = 0
    for chunk in file.chunks(settings.UPLOAD_CHUNK_BYTES):
        upload = receive_chunk(upload, offset, chunk)
        offset += len(chunk)
    return complete_upload(upload, name, kind, visibility)


@transaction.atomic
def copy_sample(user: User, course: Course, key: str, name: str = "", visibility=None) -> Dataset:
    """Copy a built-in sample into the class (no download); ingest runs on a worker."""
    permissions.require_writable(course)
    sample = SAMPLES.get(key)
    if sample is None:
        raise DatasetError(_("There is no sample called “%(key)s”.") % {"key": key}, "sample")
    language = translation.get_language() or settings.LANGUAGE_CODE
    title = sample.title.get(language[:2], sample.title["en"])
    visibility = visibility or Visibility.PRIVATE
    name = _validate_new(name or title, sample.kind, visibility)
    _lock_owner(user)
    _check_dataset_count(user, course)
    left = quota.storage_left(user, course)
    if left is not None and sample.pixel_bytes > left:  # what the copy would store, at most
        raise QuotaExceeded(
            _(
                "This sample needs %(size)s MB, and your storage quota in this class has "
                "%(left)s MB left. Ask your teacher for more space."
            )
            % {"size": f"{sample.pixel_bytes / quota.MB:.1f}", "left": f"{left / quota.MB:.1f}"},
            field="sample",
        )
    dataset = Dataset.objects.create(
        course=course,
        owner=user,
        name=name,
        kind=sample.kind,
        visibility=visibility,
        source=f"sample:{key}",
    )
    transaction.on_commit(lambda: tasks.copy_sample.delay(dataset.pk, key, language))
    return dataset


def set_visibility(dataset: Dataset, visibility: str) -> None:
    """Change who sees a dataset. A student's own dataset never becomes a teacher's one: that
    would lock its owner out of their work (a teacher copies it instead)."""
    permissions.require_writable(dataset.course)
    if visibility not in Visibility.values:
        raise DatasetError(_("Unknown visibility."), field="visibility")
    staff_owned = permissions.can_view_roster(dataset.owner, dataset.course)
    if visibility in (Visibility.HANDOUT, Visibility.HIDDEN_TEST) and not staff_owned:
        raise DatasetError(
            _(
                "A student's dataset cannot be handed out or become a hidden test set; its owner "
                "would lose access. Export it and upload a copy instead."
            ),
            field="visibility",
        )
    dataset.visibility = visibility
    dataset.save(update_fields=["visibility", "updated_at"])


def rename_dataset(dataset: Dataset, name: str) -> None:
    permissions.require_writable(dataset.course)
    dataset.name = _validate_new(name, dataset.kind, dataset.visibility)
    dataset.save(update_fields=["name", "updated_at"])


# --- edits: each is one new version ----------------------------------------------------------


def _require_ready(dataset: Dataset) -> None:
    if dataset.status != Status.READY:
        raise Conflict(_("The dataset is still being processed; wait until it is ready."))


@transaction.atomic
def new_version(
    dataset: Dataset,
    user: User | None,
    summary: str,
    change: Callable[[int], None],
    split_settings: splits.SplitSettings | None = None,
) -> Version:
    """Apply `change(number)` as the next version; earlier versions stay exactly as they were."""
    permissions.require_writable(dataset.course)
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    _require_ready(dataset)
    number = dataset.head + 1
    previous = dataset.versions.filter(number=dataset.head).first()
    change(number)
    settings_dict = (
        split_settings.as_dict()
        if split_settings
        else (previous.split_settings if previous else {})
    )
    version = Version.objects.create(
        dataset=dataset,
        number=number,
        created_by=user,
        summary=summary[:300],
        counts=count_items(dataset, number),
        split_settings=settings_dict,
    )
    dataset.head = number
    dataset.save(update_fields=["head", "updated_at"])
    return version


def _current_items(dataset: Dataset, item_ids=None):
    items = Item.objects.filter(dataset=dataset, valid_to__isnull=True)
    return items if item_ids is None else items.filter(pk__in=list(item_ids))


def _rewrite_items(items, number: int, change_item, change_annotation=None) -> int:
    """Close the given current items at `number` and write changed copies valid from it."""
    rows = list(items.prefetch_related("annotations"))
    if not rows:
        return 0
    for start in range(0, len(rows), 900):
        ids = [row.pk for row in rows[start : start + 900]]
        Item.objects.filter(pk__in=ids).update(valid_to=number)
    copies = []
    for row in rows:
        copy = Item(
            dataset_id=row.dataset_id,
            image_id=row.image_id,
            uid=row.uid,
            original_path=row.original_path,
            split=row.split,
            fold=row.fold,
            category_index=row.category_index,
            valid_from=number,
        )
        change_item(copy)
        copies.append(copy)
    Item.objects.bulk_create(copies)
    annotations = []
    for row, copy in zip(rows, copies, strict=True):
        for annotation in row.annotations.all():
            annotation.pk = None  # uid and revision stay: the same annotation, a new version
            annotation.item = copy
            if change_annotation:
                change_annotation(annotation)
            annotations.append(annotation)
    Annotation.objects.bulk_create(annotations)
    return len(rows)


def _category(dataset: Dataset, name: str, number: int) -> int:
    """Return the index of the current category with this name, creating it if needed."""
    name = name.strip()
    if not name:
        raise DatasetError(_("Give the class a name."), field="category")
    found = Category.objects.filter(dataset=dataset, valid_to__isnull=True, name=name).first()
    if found:
        return found.index
    last = Category.objects.filter(dataset=dataset).order_by("-index").first()
    index = last.index + 1 if last else 0
    Category.objects.create(dataset=dataset, index=index, name=name[:200], valid_from=number)
    return index


def relabel(dataset: Dataset, user: User, item_ids, category: str) -> Version:
    """Give the chosen images (classification) another class."""
    if not shape(dataset.kind).one_label_per_image:
        raise DatasetError(_("Relabelling whole images is for classification datasets."))

    def change(number: int) -> None:
        index = _category(dataset, category, number)
        if not _rewrite_items(
            _current_items(dataset, item_ids),
            number,
            lambda item: setattr(item, "category_index", index),
        ):
            raise DatasetError(_("Choose at least one image."), field="items")

    return new_version(dataset, user, f"Relabelled as {category}", change)


def move(dataset: Dataset, user: User, item_ids, split: str) -> Version:
    """Move the chosen images to the training, validation or test split."""
    if split not in ("train", "val", "test"):
        raise DatasetError(_("Choose train, val or test."), field="split")

    def change(number: int) -> None:
        if not _rewrite_items(
            _current_items(dataset, item_ids), number, lambda item: setattr(item, "split", split)
        ):
            raise DatasetError(_("Choose at least one image."), field="items")

    return new_version(dataset, user, f"Moved to {split}", change)


def delete_items(dataset: Dataset, user: User, item_ids) -> Version:
    """Take the chosen images out of the dataset (earlier versions keep them)."""

    def change(number: int) -> None:
        closed = _current_items(dataset, item_ids).update(valid_to=number)
        if not closed:
            raise DatasetError(_("Choose at least one image."), field="items")

    return new_version(dataset, user, "Deleted images", change)


def _current_category(dataset: Dataset, index: int) -> Category:
    category = Category.objects.filter(dataset=dataset, index=index, valid_to__isnull=True).first()
    if category is None:
        raise DatasetError(_("There is no such class."), field="category")
    return category


def rename_category(dataset: Dataset, user: User, index: int, new_name: str) -> Version:
    new_name = new_name.strip()[:200]

    def change(number: int) -> None:
        category = _current_category(dataset, index)
        clash = Category.objects.filter(dataset=dataset, valid_to__isnull=True, name=new_name)
        if not new_name or clash.exclude(pk=category.pk).exists():
            raise DatasetError(
                _("Another class already has this name; merge the two instead."), field="name"
            )
        category.valid_to = number
        category.save(update_fields=["valid_to"])
        Category.objects.create(
            dataset=dataset,
            index=index,
            name=new_name,
            keypoints=category.keypoints,
            skeleton=category.skeleton,
            sigmas=category.sigmas,
            valid_from=number,
        )

    return new_version(dataset, user, f"Renamed a class to {new_name}", change)


def merge_categories(dataset: Dataset, user: User, source: int, target: int) -> Version:
    """Merge class `source` into class `target`: its images and objects take the target's name."""
    if source == target:
        raise DatasetError(_("Choose two different classes."), field="target")

    def change(number: int) -> None:
        gone = _current_category(dataset, source)
        _current_category(dataset, target)
        gone.valid_to = number
        gone.save(update_fields=["valid_to"])
        affected = _current_items(dataset).filter(_labelled_with(source)).distinct()

        def item_change(item: Item) -> None:
            if item.category_index == source:
                item.category_index = target

        def annotation_change(annotation: Annotation) -> None:
            if annotation.category_index == source:
                annotation.category_index = target

        _rewrite_items(affected, number, item_change, annotation_change)

    return new_version(dataset, user, "Merged two classes", change)


def _labelled_with(index: int) -> Q:
    return Q(category_index=index) | Q(annotations__category_index=index)


def resplit(dataset: Dataset, user: User, split_settings: splits.SplitSettings) -> Version:
    """Draw the train/validation/test split (and k folds) again, stratified and seeded."""
    if not 0 <= split_settings.val < 1 or not 0 <= split_settings.test < 1:
        raise DatasetError(_("Ratios must be between 0 and 1."), field="val")
    if split_settings.val + split_settings.test >= 1:
        raise DatasetError(_("Leave some images for training."), field="val")
    if not (split_settings.folds == 0 or 2 <= split_settings.folds <= limits.MAX_KFOLD):
        message = _("Use 2 to %(max)s folds, or 0 for none.") % {"max": limits.MAX_KFOLD}
        raise DatasetError(message, field="folds")

    def change(number: int) -> None:
        _rewrite_items(_current_items(dataset), number, lambda item: None)
        rows = Item.objects.filter(dataset=dataset, valid_from=number).prefetch_related(
            "annotations"
        )
        strata = []
        for item in rows:
            first = item.annotations.all()[:1]
            stratum = (
                item.category_index
                if item.category_index is not None
                else (first[0].category_index if first else -1)
            )
            strata.append((item.pk, stratum, None))
        write_assignment(splits.assign(strata, split_settings))

    return new_version(dataset, user, "New split", change, split_settings)


def set_keypoints(
    dataset: Dataset,
    user: User,
    index: int,
    names: list[str],
    skeleton,
    sources=None,
    sigmas=None,
) -> Category:
    """Give a class new keypoint names and skeleton (a new version). Each new point takes the
    old point `sources[k]` (1-based; None: a new point, absent (0, 0, 0)) or, without sources,
    the old point of the same name; a point no new one takes goes. Committed skeletons and the
    ones waiting in drafts follow alike. `sigmas`: the OKS sigmas, one per new point ([]: the
    trainer's defaults); None keeps the old points' own where every new point had one."""
    if not permissions.can_edit_dataset(user, dataset):
        raise NotFound(_("There is no such dataset."), field="dataset")
    if not shape(dataset.kind).has_keypoints:
        raise DatasetError(_("Keypoint names are for keypoint datasets."), field="keypoints")
    names = [name.strip()[:60] for name in names]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise DatasetError(_("Give every keypoint a different name."), field="keypoints")
    pairs = []
    for pair in skeleton:
        a, b = int(pair[0]), int(pair[1])
        if not (1 <= a <= len(names) and 1 <= b <= len(names)) or a == b:
            raise DatasetError(
                _("A skeleton pair joins two different points, numbered 1 to %(n)s.")
                % {"n": len(names)},
                field="skeleton",
            )
        pairs.append([a, b])
    if sources is not None and (
        len(sources) != len(names)
        or any(source is not None and not 1 <= source <= MAX_KEYPOINT_SOURCES for source in sources)
        or len({s for s in sources if s is not None}) != len([s for s in sources if s is not None])
    ):
        raise DatasetError(
            _("Say for each point which old point it was (each at most once), or none."),
            field="sources",
        )
    if sigmas:
        problem = sigmas_problem(list(sigmas), len(names))
        if problem is not None:
            raise DatasetError(problem, field="sigmas")
    holder: dict = {}

    def change(number: int) -> None:
        category = _current_category(dataset, index)
        old = list(category.keypoints or [])
        if sources is not None:
            where = [source - 1 if source and source <= len(old) else None for source in sources]
        else:
            where = [old.index(name) if name in old else None for name in names]
        kept = list(category.sigmas or [])
        if sigmas is not None:
            new_sigmas = [float(value) for value in sigmas]
        elif len(kept) == len(old) and all(at is not None for at in where):
            new_sigmas = [kept[at] for at in where]  # each point keeps its own sigma
        else:
            new_sigmas = []  # a new point has none: the trainer's defaults for all
        category.valid_to = number
        category.save(update_fields=["valid_to"])
        holder["category"] = Category.objects.create(
            dataset=dataset,
            index=index,
            name=category.name,
            keypoints=names,
            skeleton=pairs,
            sigmas=new_sigmas,
            valid_from=number,
        )
        if where == list(range(len(old))):
            return

        def remap(annotation: Annotation) -> None:
            points = annotation.keypoints
            if annotation.category_index != index or not points:
                return
            annotation.keypoints = [
                value
                for at in where
                for value in (points[3 * at : 3 * at + 3] if at is not None else [0, 0, 0])
            ]
            annotation.revision += 1

        affected = _current_items(dataset).filter(annotations__category_index=index).distinct()
        _rewrite_items(affected, number, lambda item: None, remap)
        waiting = DraftChange.objects.filter(draft__dataset=dataset, data__category=index)
        for change_row in waiting.exclude(op="delete"):
            points = change_row.data.get("keypoints")
            if points:
                change_row.data["keypoints"] = [
                    value
                    for at in where
                    for value in (points[3 * at : 3 * at + 3] if at is not None else [0, 0, 0])
                ]
                change_row.save(update_fields=["data"])

    new_version(dataset, user, f"Keypoints of {index} changed", change)
    return holder["category"]
