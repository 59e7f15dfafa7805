"""`/ws/jobs/<id>/?after=N`: a job's stored events after N, then its live events.

The consumer joins the group first and replays second, so nothing falls between the two; the
client drops any event whose number it has already seen. A page that reconnects after a network
drop asks for the events after the last number it has: no gaps, no duplicates.

Access is checked again when the watcher's role in the job's class changes or they are removed
(`access.changed` on their `user-<id>` group): a TA demoted to student stops watching other
students' jobs, a removed student their own; the socket closes with 4403.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.accounts import permissions
from webapp.accounts.actions import user_group
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.tasks import job_group

FORBIDDEN = 4403
REPLAY_LIMIT = 5000


@database_sync_to_async
def _course_if_viewable(user, job_id: int) -> int | None:
    """The job's class id if the user may watch the job now, else None."""
    permissions.forget_roles(user)  # the socket's user lives for hours: read the roles afresh
    job = Job.objects.select_related("course").filter(pk=job_id).first()
    return job.course_id if job is not None and permissions.can_view_job(user, job) else None


@database_sync_to_async
def _events_after(job_id: int, after: int) -> list[dict]:
    events = JobEvent.objects.filter(job_id=job_id, number__gt=after).order_by("number")
    return [event.as_message() for event in events[:REPLAY_LIMIT]]


class JobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = None
        self.person = None
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        await self.accept()
        self.course_id = await _course_if_viewable(self.scope["user"], self.job_id)
        if self.course_id is None:
            await self.close(code=FORBIDDEN)
            return
        self.group = job_group(self.job_id)
        self.person = user_group(self.scope["user"].pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.person, self.channel_name)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            after = 0
        for event in await _events_after(self.job_id, after):
            await self.send_json(event)

    async def disconnect(self, code):
        for group in (self.group, self.person):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)
        self.group = self.person = None

    async def receive_json(self, content, **kwargs):
        """Clients only listen."""

    async def job_event(self, message):
        if self.group:  # none once access was taken away: queued events stay unheard
            await self.send_json(message["event"])

    async def access_changed(self, message):
        """The watcher's role in the job's class changed: close if the job is no longer theirs."""
        if message["course"] != self.course_id or self.group is None:
            return
        if await _course_if_viewable(self.scope["user"], self.job_id) is None:
            await self.disconnect(FORBIDDEN)
            await self.close(code=FORBIDDEN)
