"""The teacher's form for a new labelling assignment."""

from django import forms
from django.utils.translation import gettext_lazy as _

from webapp.accounts import permissions
from webapp.accounts.models import Membership, Role, User
from webapp.datasets.models import Dataset, Status, Visibility
from webapp.labelling import actions

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
DATASETS_OFFERED = 200  # the newest datasets the form offers as the pool


class PoolChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Dataset) -> str:
        return f"{obj.shown_name} ({obj.get_kind_display()}, v{obj.head})"


class StudentChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.label()


class LabellingForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    instructions = forms.CharField(
        label=_("Instructions"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What to label and how, shown to the students."),
    )
    dataset = PoolChoice(
        label=_("Pool of images"),
        queryset=Dataset.objects.none(),
        help_text=_("A dataset of this class you may edit; the published labels go into it."),
    )
    mode = forms.ChoiceField(
        label=_("Which images"),
        choices=[
            ("all", _("All images (or the first N)")),
            ("random", _("N images at random")),
            ("unlabelled", _("N unlabelled images at random (all of them if N is empty)")),
        ],
        initial="all",
        widget=forms.RadioSelect,
    )
    count = forms.IntegerField(
        label=_("Number of images (N)"),
        required=False,
        min_value=1,
        max_value=actions.MAX_IMAGES,
    )
    seed = forms.IntegerField(
        label=_("Random seed"),
        initial=0,
        min_value=0,
        max_value=actions.MAX_SEED,
        help_text=_("The same seed draws the same images."),
    )
    per_image = forms.TypedChoiceField(
        label=_("Students per image"),
        choices=[(1, "1"), (2, "2"), (3, "3")],
        coerce=int,
        initial=2,
        help_text=_("With 2 or 3, you see how far they agree and resolve where they do not."),
    )
    everyone = forms.BooleanField(
        label=_("All active students of the class"), required=False, initial=True
    )
    students = StudentChoice(
        label=_("Or these students"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    deadline = forms.DateTimeField(
        label=_("Deadline"),
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )

    def __init__(self, *args, course, user, **kwargs):
        super().__init__(*args, **kwargs)
        pools = Dataset.objects.filter(course=course, status=Status.READY, head__gt=0).exclude(
            visibility=Visibility.HIDDEN_TEST
        )
        if not permissions.can_manage_course(user, course):
            pools = pools.filter(owner=user)  # a TA edits their own datasets only
        newest = pools.order_by("-created_at", "-pk").values_list("pk", flat=True)
        self.fields["dataset"].queryset = pools.filter(
            pk__in=list(newest[:DATASETS_OFFERED])
        ).order_by("-created_at", "-pk")
        students = Membership.objects.active().filter(course=course, role=Role.STUDENT)
        ids = list(
            students.order_by("user__username").values_list("user_id", flat=True)[
                : actions.MAX_STUDENTS
            ]
        )
        self.fields["students"].queryset = User.objects.filter(pk__in=ids).order_by("username")

    def clean(self):
        data = super().clean()
        if not data.get("everyone") and not data.get("students"):
            self.add_error("students", _("Choose the students, or all of them."))
        return data
