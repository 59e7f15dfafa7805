"""`/ws/jobs/<id>/?after=N`: a job's stored events after N, then its live events.

The consumer joins the group first and replays second, so nothing falls between the two; the
client drops any event whose number it has already seen. A page that reconnects after a network
drop asks for the events after the last number it has: no gaps, no duplicates.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.accounts import permissions
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.tasks import job_group

FORBIDDEN = 4403
REPLAY_LIMIT = 5000


@database_sync_to_async
def _may_view(user, job_id: int) -> bool:
    job = Job.objects.select_related("course").filter(pk=job_id).first()
    return job is not None and permissions.can_view_job(user, job)


@database_sync_to_async
def _events_after(job_id: int, after: int) -> list[dict]:
    events = JobEvent.objects.filter(job_id=job_id, number__gt=after).order_by("number")
    return [event.as_message() for event in events[:REPLAY_LIMIT]]


class JobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = None
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        await self.accept()
        if not await _may_view(self.scope["user"], job_id):
            await self.close(code=FORBIDDEN)
            return
        self.group = job_group(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            after = 0
        for event in await _events_after(job_id, after):
            await self.send_json(event)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Clients only listen."""

    async def job_event(self, message):
        await self.send_json(message["event"])
