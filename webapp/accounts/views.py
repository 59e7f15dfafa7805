"""Sign in, sign out, register with a join code, and the account page (password, API tokens)."""

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from webapp.accounts import actions, permissions, throttle
from webapp.accounts.forms import LoginForm, RegisterForm, TokenForm
from webapp.accounts.models import ApiToken

TOKENS_PER_PAGE = 50


def _safe_next(request, default: str) -> str:
    """Return the ?next= target when it stays on this site, else the default."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _lock_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return ngettext(
        "Too many failed sign-ins. For your safety, sign-in is paused; "
        "try again in %(minutes)s minute or ask your teacher to reset your password.",
        "Too many failed sign-ins. For your safety, sign-in is paused; "
        "try again in %(minutes)s minutes or ask your teacher to reset your password.",
        minutes,
    ) % {"minutes": minutes}


@never_cache
@csrf_protect
def login_view(request):
    next_url = _safe_next(request, reverse("course_list"))
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url)
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"].strip()
        address = throttle.client_address(request)
        locked = throttle.seconds_locked(username, address)
        if locked:
            form.add_error(None, _lock_message(locked))
            status = 429
        else:
            user = authenticate(request, username=username, password=form.cleaned_data["password"])
            if user is None:
                throttle.record_failure(username, address)
                form.add_error(None, _("The user name or password is wrong."))
            else:
                throttle.record_success(username)
                login(request, user)
                return redirect(next_url)
    return render(request, "accounts/login.html", {"form": form, "next": next_url}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("login")


@never_cache
@csrf_protect
def register_view(request):
    initial = {"join_code": request.GET.get("code", "")}
    form = RegisterForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            user = actions.register_student(
                form.cleaned_data["username"],
                form.cleaned_data["password"],
                form.cleaned_data["join_code"],
            )
        except actions.AccountsError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except permissions.CourseArchived as exc:  # the code is right; the class takes nobody
            form.add_error("join_code", exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome to Manabi! You are now in your class."))
            return redirect("course_list")
    return render(request, "accounts/register.html", {"form": form})


@login_required
def settings_view(request):
    password_form = PasswordChangeForm(request.user)
    token_form = TokenForm()
    new_token = None
    if request.method == "POST" and request.POST.get("action") == "password":
        password_form = PasswordChangeForm(request.user, request.POST)
        if password_form.is_valid():
            user = password_form.save()
            update_session_auth_hash(request, user)
            messages.success(request, _("Your password was changed."))
            return redirect("account_settings")
    elif request.method == "POST" and request.POST.get("action") == "token":
        token_form = TokenForm(request.POST)
        if token_form.is_valid():
            new_token, _token = actions.issue_token(request.user, token_form.cleaned_data["name"])
            token_form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
    tokens = Paginator(tokens.order_by("-created_at", "-pk"), TOKENS_PER_PAGE).get_page(
        request.GET.get("page")
    )  # a script that signs in every day makes a token a day
    return render(
        request,
        "accounts/settings.html",
        {
            "password_form": password_form,
            "token_form": token_form,
            "tokens": tokens,
            "new_token": new_token,
        },
    )


@login_required
@require_POST
def token_revoke_view(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    actions.revoke_token(token)
    messages.success(request, _("The token was revoked. Scripts using it stop working now."))
    return redirect("account_settings")
