"""`/api/v1/auth/*` and `/api/v1/me`: tokens for scripts, registration with a join code."""

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.errors import HttpError

from webapp.accounts import actions, throttle
from webapp.accounts.models import ApiToken, hash_token
from webapp.api.base import READ, WRITE, error, errors
from webapp.api.schemas import (
    Credentials,
    Id,
    MeOut,
    Registration,
    TokenInfo,
    TokenOut,
    UserOut,
)

router = Router(tags=["auth"])


@router.post("/auth/token", auth=None, response={200: TokenOut, **errors(400, 401, 413, 422, 429)})
def create_token(request, payload: Credentials):
    """Exchange a user name and password for a bearer token (shown once, stored hashed)."""
    address = throttle.client_address(request)
    locked = throttle.seconds_locked(payload.username, address)
    if locked:
        response = error(
            f"Too many failed sign-ins; try again in {max(1, locked // 60)} minutes.", 429
        )
        response["Retry-After"] = str(locked)
        return response
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None:
        throttle.record_failure(payload.username, address)
        return error("The user name or password is wrong.", 401)
    throttle.record_success(payload.username)
    raw, _token = actions.issue_token(user, payload.name)
    return {"token": raw}


@router.delete("/auth/token", response={204: None, **errors(*WRITE)})
def revoke_current_token(request):
    """Revoke the bearer token this request was made with."""
    raw = getattr(request, "api_token", None)
    if raw is None:
        raise HttpError(400, "This call needs a bearer token; the browser session has none.")
    token = ApiToken.objects.get(key_hash=hash_token(raw))
    actions.revoke_token(token)
    return Status(204, None)


@router.get("/auth/tokens", response={200: list[TokenInfo], **errors(401)})
def list_tokens(request):
    """The caller's active tokens (their values are never shown again)."""
    return ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)


@router.delete("/auth/tokens/{token_id}", response={204: None, **errors(*WRITE, 404)})
def revoke_token(request, token_id: Id):
    """Revoke one of the caller's tokens (404 for anyone else's)."""
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    actions.revoke_token(token)
    return Status(204, None)


@router.post(
    "/auth/register", auth=None, response={201: UserOut, **errors(400, 403, 404, 409, 413, 422)}
)
def register(request, payload: Registration):
    """Create a student account in the class with this join code."""
    user = actions.register_student(payload.username, payload.password, payload.join_code)
    return Status(201, {"id": user.pk, "username": user.username})


@router.get("/me", response={200: MeOut, **errors(*READ)})
def me(request):
    """Who the caller is."""
    user = request.user
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "is_teacher": user.is_teacher,
    }
