"""`/ws/courses/<id>/`: live class events (roster changes for teachers and TAs, renames for all).

Access is checked when the socket opens and again whenever the holder's role in the class
changes or they are removed (`access.changed` on their `user-<id>` group, sent by
`accounts.actions` after the commit): a socket they may no longer hold is closed with 4403.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.accounts import permissions
from webapp.accounts.actions import course_group, course_staff_group, user_group
from webapp.accounts.models import Course

FORBIDDEN = 4403


@database_sync_to_async
def _access(user, course_id: int) -> tuple[bool, bool]:
    permissions.forget_roles(user)  # the socket's user lives for hours: read the roles afresh
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return False, False
    return permissions.can_view_course(user, course), permissions.can_view_roster(user, course)


class CourseConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.groups_joined: list[str] = []
        self.revoked = False
        self.course_id = int(self.scope["url_route"]["kwargs"]["course_id"])
        can_view, self.is_staff = await _access(self.scope["user"], self.course_id)
        await self.accept()
        if not can_view:
            # Accept, then close with an application code, so the client can tell "forbidden"
            # from a network drop and stop reconnecting.
            await self.close(code=FORBIDDEN)
            return
        self.groups_joined.append(course_group(self.course_id))
        if self.is_staff:
            self.groups_joined.append(course_staff_group(self.course_id))
        self.groups_joined.append(user_group(self.scope["user"].pk))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"kind": "hello", "staff": self.is_staff})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Clients only listen; anything they send is ignored."""

    async def course_event(self, message):
        if not self.revoked:  # events already queued when access was taken away stay unheard
            await self.send_json(message["event"])

    async def access_changed(self, message):
        """The holder's role here changed: keep the socket only if it is still theirs to hold.

        A socket opened as staff is a staff socket (its page shows the roster): a demoted TA
        loses it, and the page reloads into the student view (or "not found" for someone
        removed). A promoted student keeps theirs.
        """
        if message["course"] != self.course_id or self.revoked:
            return
        can_view, is_staff = await _access(self.scope["user"], self.course_id)
        if can_view and (is_staff or not self.is_staff):
            return
        self.revoked = True
        await self.disconnect(FORBIDDEN)
        self.groups_joined = []
        # The page was drawn for the old role: the client reloads it (daphne drops close reasons).
        await self.send_json({"kind": "access.changed"})
        await self.close(code=FORBIDDEN)
