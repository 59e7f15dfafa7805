"""`/ws/courses/<id>/`: live class events (roster changes for teachers and TAs, renames for all)."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.accounts import permissions
from webapp.accounts.actions import course_group, course_staff_group
from webapp.accounts.models import Course

FORBIDDEN = 4403


@database_sync_to_async
def _access(user, course_id: int) -> tuple[bool, bool]:
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return False, False
    return permissions.can_view_course(user, course), permissions.can_view_roster(user, course)


class CourseConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.groups_joined: list[str] = []
        course_id = int(self.scope["url_route"]["kwargs"]["course_id"])
        can_view, is_staff = await _access(self.scope["user"], course_id)
        await self.accept()
        if not can_view:
            # Accept, then close with an application code, so the client can tell "forbidden"
            # from a network drop and stop reconnecting.
            await self.close(code=FORBIDDEN)
            return
        self.groups_joined.append(course_group(course_id))
        if is_staff:
            self.groups_joined.append(course_staff_group(course_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"kind": "hello", "staff": is_staff})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Clients only listen; anything they send is ignored."""

    async def course_event(self, message):
        await self.send_json(message["event"])
