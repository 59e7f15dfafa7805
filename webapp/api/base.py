"""The JSON API v1: authentication (bearer token or session with CSRF) and the error format.

Every error is `{"detail": str, "errors": {field: message}}` with a meaningful status, and
every operation documents each status it can answer (`errors(...)`), so that a client, and the
schema fuzzer of the test suite, know them all from the OpenAPI schema.
"""

import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from webapp.accounts import actions
from webapp.api.schemas import ErrorOut
from webapp.errors import Refused

log = logging.getLogger(__name__)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>` for scripts; tokens are stored hashed."""

    def authenticate(self, request: HttpRequest, token: str):
        user = actions.user_for_token(token)
        if user is not None:
            request.user = user
            request.api_token = token
        return user


class SessionWithCsrf(APIKeyCookie):
    """The browser's session; unsafe methods must carry the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)  # checked below, only once we know who is calling

    def authenticate(self, request: HttpRequest, key: str | None):
        if not request.user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed: reload the page and try again.")
        return request.user


def error(detail: str, status: int, errors: dict | None = None) -> JsonResponse:
    """Return the API's error shape."""
    return JsonResponse({"detail": detail, "errors": errors or {}}, status=status)


# What a signed-in read may answer besides its own refusals: 400 when the query cannot be read
# (over DATA_UPLOAD_MAX_NUMBER_FIELDS parameters), 401 without a valid token or session, 422
# when a path or query parameter is out of its range.
READ = (400, 401, 422)
# ...and a change: 400 when the body is not JSON of the expected shape (or the change is refused
# as it stands), 403 when a browser session's CSRF token is missing, 413 when the body is larger
# than the server takes.
WRITE = (400, 401, 403, 413, 422)


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """Document each of these statuses as the error shape (for an operation's `response=`)."""
    return dict.fromkeys(sorted(set(statuses)), ErrorOut)


def _refuse_nul(field: str) -> None:
    message = "Text may not contain the NUL character (\\0)."
    raise Refused(message, field=field)


class JsonObjectParser(Parser):
    """Every JSON body of this API is an object: `[]`, `"x"` or `5` is refused (400), where a
    schema whose fields are all optional would take it for "change nothing". No query or form
    text may hold a NUL character: PostgreSQL cannot store one, and it never belongs in a name."""

    def parse_body(self, request: HttpRequest) -> dict:
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("the request body is not a JSON object")
        return data  # a NUL in it is refused by `schemas.Body`, naming the field

    def parse_querydict(self, data, list_fields, request: HttpRequest) -> dict:
        for key, values in data.lists():
            texts = [value for value in values if isinstance(value, str)]  # files stay unread
            if "\x00" in key or any("\x00" in value for value in texts):
                _refuse_nul(key.replace("\x00", ""))
        return super().parse_querydict(data, list_fields, request)


api = NinjaAPI(
    title="Manabi API",
    version="1",
    description="Classes, datasets and training jobs of Manabi. Authenticate with "
    "`POST /api/v1/auth/token`, then send `Authorization: Bearer <token>`.",
    urls_namespace="api-v1",
    parser=JsonObjectParser(),
    auth=[BearerToken(), SessionWithCsrf()],
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def _field_name(loc: list) -> str:
    # ninja locations look like ["body", "payload", "name"]; the field is what a user typed.
    parts = [str(p) for p in loc if p not in ("body", "payload", "query", "path", "form", "file")]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def _on_validation_error(request, exc: ValidationError):
    errors: dict[str, str] = {}
    for item in exc.errors:
        errors.setdefault(_field_name(list(item.get("loc", []))), item.get("msg", "invalid"))
    if list(errors) == ["body"]:
        return error("The request body is not valid JSON of the expected shape.", 400, errors)
    return error("Some fields are not valid.", 422, errors)


@api.exception_handler(AuthenticationError)
def _on_unauthenticated(request, exc):
    return error("Sign in first: send a bearer token or a session cookie.", 401)


@api.exception_handler(HttpError)
def _on_http_error(request, exc: HttpError):
    return error(str(exc), exc.status_code)


@api.exception_handler(Http404)
def _on_not_found(request, exc):
    return error("Not found.", 404)


@api.exception_handler(PermissionDenied)
def _on_forbidden(request, exc):
    return error(str(exc) or "You may not do this.", 403)


@api.exception_handler(Refused)
def _on_refused(request, exc: Refused):
    return error(exc.message, exc.status, exc.errors)


@api.exception_handler(RequestDataTooBig)
def _on_too_big(request, exc):
    return error("The request body is too large.", 413)


@api.exception_handler(MultiPartParserError)
def _on_bad_multipart(request, exc):
    return error(f"The request body is not valid multipart/form-data ({exc}).", 400)


@api.exception_handler(SuspiciousOperation)
def _on_bad_request(request, exc):  # too many fields or files, a malformed header, ...
    return error(str(exc) or "The request cannot be read.", 400)


@api.exception_handler(Exception)
def _on_unexpected(request, exc: Exception):
    log.exception("API error on %s %s", request.method, request.path)
    return error("Something went wrong on the server; the error was logged.", 500)
