"""Job news for pages that watch many jobs: the class dashboard and the queue.

A job's own events go to its `job-<id>` group from the reporter; this module tells the class's
staff group that a job changed, after the change is committed. A broker that is down loses
these notices, never data: pages read the database when they refresh.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from webapp.accounts.actions import course_staff_group

log = logging.getLogger(__name__)


def send_now(group: str, message: dict) -> bool:
    """Send to a channel group; False (logged) when the channel layer cannot be reached."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - Redis down or restarting: the database still has it all
        log.warning("could not send to channel group %s", group, exc_info=True)
        return False
    return True


def job_changed(job) -> None:
    """Tell the class's teachers and TAs that a job's status or figures changed."""
    event = {
        "kind": "job",
        "job": job.pk,
        "status": job.status,
        "owner": job.owner_id,
        "progress": round(job.progress, 3),
    }
    group = course_staff_group(job.course_id)
    transaction.on_commit(lambda: send_now(group, {"type": "course.event", "event": event}))
