"""Forms for the sign-in, registration, account and class pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from webapp.accounts.models import Course, Role

ROSTER_MAX_BYTES = 1024 * 1024


class LoginForm(forms.Form):
    username = forms.CharField(label=_("User name"), max_length=150)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput)


class RegisterForm(forms.Form):
    join_code = forms.CharField(
        label=_("Join code"), max_length=20, help_text=_("The code your teacher gave the class.")
    )
    username = forms.CharField(label=_("User name"), max_length=150)
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput, help_text=_("At least 8 characters.")
    )
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


class CourseNameForm(forms.Form):
    name = forms.CharField(label=_("Class name"), max_length=120)


class JoinForm(forms.Form):
    join_code = forms.CharField(label=_("Join code"), max_length=20)


class LimitsForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = [
            "gpu_minutes_per_student",
            "concurrent_jobs_per_student",
            "storage_mb_per_student",
        ]


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class RosterImportForm(forms.Form):
    roster = forms.FileField(
        label=_("Roster CSV"),
        help_text=_(
            "One student per line: user name, display name (optional), password (optional)."
        ),
    )

    def clean_roster(self) -> str:
        upload = self.cleaned_data["roster"]
        if upload.size > ROSTER_MAX_BYTES:
            raise forms.ValidationError(
                _("%(name)s is larger than 1 MB; split the roster.") % {"name": upload.name}
            )
        raw = upload.read()
        # Excel on Japanese Windows saves CSV as cp932; everything else is UTF-8.
        for encoding in ("utf-8-sig", "cp932"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise forms.ValidationError(
            _("%(name)s is not a text CSV file (UTF-8 or Shift_JIS).") % {"name": upload.name}
        )


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100, required=False)
