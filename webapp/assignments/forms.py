"""The teacher's assignment form and the student's submit form."""

from django import forms
from django.conf import settings
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from trainer.kinds import trainable  # torch-free: which kinds the trainer can train
from webapp.assignments import actions
from webapp.assignments.models import Assignment, Metric
from webapp.datasets.models import Dataset, Status, Visibility
from webapp.errors import Refused
from webapp.jobs import kinds

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class DatasetChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Dataset) -> str:
        return f"{obj.name} (v{obj.head}, {obj.get_visibility_display()})"


class AssignmentForm(forms.ModelForm):
    dataset_version = forms.IntegerField(
        label=_("Dataset version"),
        min_value=1,
        required=False,
        help_text=_("Leave empty for the dataset's current version."),
    )
    deadline = forms.DateTimeField(
        label=_("Deadline"),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )

    class Meta:
        model = Assignment
        fields = actions.FIELDS
        field_classes = {"dataset": DatasetChoice, "hidden_test": DatasetChoice}
        labels = {
            "title": _("Title"),
            "description": _("Description"),
            "dataset": _("Dataset handed out"),
            "hidden_test": _("Hidden test set"),
            "metric": _("Score by"),
            "daily_limit": _("Submissions per student per day"),
            "show_names": _("Show students' names on the leaderboard"),
        }
        help_texts = {
            "description": _("Markdown: # headings, **bold**, lists, links, tables."),
            "dataset": _("Students train on this dataset and submit runs trained on it."),
            "hidden_test": _(
                "Only teachers and TAs see its images; submissions are scored on all of them."
            ),
            "show_names": _(
                "Off: each student sees the scores and ranks, and only their own name. "
                "Teachers and TAs always see every name."
            ),
            "metric": _(
                "Classification: accuracy or macro-averaged F1. Object detection: mAP@0.5 of "
                "the boxes found on the hidden test set. Segmentation: mIoU, how well the "
                "painted pixels overlap the true ones, averaged over the classes. Keypoints: "
                "OKS AP, COCO's average precision of the points found, near enough to the true "
                "ones for the size of the figure."
            ),
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args, course, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course
        ready = Dataset.objects.filter(course=course, status=Status.READY, head__gt=0)
        self.fields["dataset"].queryset = ready.filter(
            visibility__in=actions.HANDOUT_VISIBILITIES,
            kind__in=[kind for kind in trainable() if kinds.scored(kind)],
        )
        self.fields["hidden_test"].queryset = ready.filter(visibility=Visibility.HIDDEN_TEST)
        self.fields["metric"].choices = metric_choices(
            self.instance.metric if self.instance.pk else None
        )
        self.fields["daily_limit"].min_value = 1
        self.fields["daily_limit"].widget.attrs["min"] = 1
        self.fields["deadline"].help_text = _(
            "Submissions close at this moment (time zone: %(zone)s)."
        ) % {"zone": settings.TIME_ZONE}

    def clean(self):
        data = super().clean()
        dataset, hidden = data.get("dataset"), data.get("hidden_test")
        if dataset is None or hidden is None:
            return data
        if not data.get("dataset_version"):
            data["dataset_version"] = dataset.head
        try:
            actions.check_datasets(self.course, dataset, data["dataset_version"], hidden)
            if data.get("metric"):
                actions.check_metric(dataset, data["metric"])
        except Refused as exc:
            self.add_error(exc.field, exc.message)
        return data


def metric_choices(current: str | None = None) -> list:
    """The metrics grouped by the kind they score (kinds.ASSIGNMENT_METRICS), for the kinds the
    trainer trains: a teacher sees which metric fits which dataset. An assignment's own metric
    stays listed (on its own) should its kind no longer be offered."""
    trained = trainable()
    groups: list = [
        (capfirst(kinds.kind_name(kind)), [(m, Metric(m).label) for m in metrics])
        for kind, metrics in kinds.ASSIGNMENT_METRICS.items()
        if kind in trained
    ]
    offered = {m for _kind, metrics in groups for m, _label in metrics}
    if current and current not in offered:
        groups.append((current, Metric(current).label))
    return groups


class SubmitForm(forms.Form):
    job = forms.ModelChoiceField(queryset=None, label=_("Run to submit"), empty_label=None)

    def __init__(self, *args, jobs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job"].queryset = jobs
        self.fields["job"].label_from_instance = _job_label


def _job_label(job) -> str:
    """The run as the submit form lists it, e.g. "#12 · simple_cnn · accuracy 83.0% · v2": its
    primary figure of its kind, from its small metrics (results can be megabytes)."""
    model = job.spec.get("model") if isinstance(job.spec.get("model"), str) else "layers"
    kind = kinds.job_kind(job)
    figure, value = kinds.primary(kind), kinds.primary_value(kind, job.metrics)
    shown = f" · {figure.label} {figure.text(value)}" if value is not None else ""
    return f"#{job.pk} · {model}{shown} · v{job.dataset_version}"
