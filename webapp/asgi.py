"""ASGI entry point (daphne): HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()  # before importing consumers: it sets Django up

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from webapp.routing import websocket_urlpatterns  # noqa: E402


def leave_bodies_to_django() -> None:
    """daphne's Twisted request parses every multipart POST into memory before Django reads it
    again, and answers one it cannot parse with a bare 400 (no JSON, no Content-Type, nothing in
    the log). Django parses request bodies itself, within its upload limits: Twisted's parsing
    is switched off."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # served by another ASGI server
        return
    if getattr(WebRequest, "leaves_bodies_to_django", False):
        return
    init = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # twisted.web.http.Request's own switch

    WebRequest.__init__ = __init__
    WebRequest.leaves_bodies_to_django = True


leave_bodies_to_django()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
