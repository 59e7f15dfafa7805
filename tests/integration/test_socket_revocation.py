"""Open sockets lose what their holder loses (issue 10, item 6).

Access used to be checked only when a socket opened: a TA demoted to student kept hearing the
staff's events, a removed student kept watching jobs. Through the real stack (origin check →
session → consumer) and the real Redis channel layer, a role change or a removal now closes
with 4403 exactly the sockets the person may no longer hold, and no other.
"""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests import live
from webapp.accounts import actions
from webapp.accounts.models import Membership
from webapp.asgi import application
from webapp.datasets.models import Dataset
from webapp.jobs import broadcast
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.tasks import job_group

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
FORBIDDEN = {"type": "websocket.close", "code": 4403}
RELOAD = {"kind": "access.changed"}  # a class page reloads: it was drawn for the old role


@pytest.fixture(autouse=True)
def _redis():
    live.require_redis()


def _socket(world, persona: str, path: str) -> WebsocketCommunicator:
    client = Client()
    client.force_login(world.user(persona))
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    return WebsocketCommunicator(application, path, headers=headers)


def _course_socket(world, persona: str, course=None) -> WebsocketCommunicator:
    return _socket(world, persona, f"/ws/courses/{(course or world.course).pk}/")


def _job_socket(world, persona: str, job: Job) -> WebsocketCommunicator:
    return _socket(world, persona, f"/ws/jobs/{job.pk}/?after=1")


def _job(world, owner: str) -> Job:
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.user(owner),
        name=f"{owner}'s digits",
        kind="classification",
        status="ready",
        head=1,
    )
    job = Job.objects.create(
        course=world.course,
        owner=world.user(owner),
        dataset=dataset,
        dataset_version=1,
        spec={"model": "simple_cnn", "epochs": 2},
        status="running",
        attempts=1,
    )
    JobEvent.objects.create(job=job, number=1, attempt=1, seq=0, kind="started", data={})
    return job


@database_sync_to_async
def _send_job_event(job: Job, number: int) -> dict:
    stored = JobEvent.objects.create(
        job=job, number=number, attempt=1, seq=number, kind="log", data={"message": "epoch"}
    )
    message = stored.as_message()
    assert broadcast.send_now(job_group(job.pk), {"type": "job.event", "event": message})
    return message


def _membership(world, persona: str, course=None) -> Membership:
    return Membership.objects.get(course=course or world.course, user=world.user(persona))


change_role = database_sync_to_async(actions.change_role)
remove_member = database_sync_to_async(actions.remove_member)
join_course = database_sync_to_async(actions.join_course)


async def _open(*sockets: WebsocketCommunicator, hello: bool = True) -> None:
    for socket in sockets:
        connected, _ = await socket.connect()
        assert connected
        if hello:
            assert (await socket.receive_json_from(timeout=5))["kind"] == "hello"


def test_a_demoted_ta_stops_hearing_staff_events_and_the_socket_closes(world):
    ta, teacher = _course_socket(world, "ta"), _course_socket(world, "teacher")
    again = _course_socket(world, "ta")  # opened after the demotion
    membership = _membership(world, "ta")

    async def scenario():
        await _open(ta, teacher)
        await change_role(world.course, membership, "student")
        assert await ta.receive_json_from(timeout=5) == RELOAD
        assert await ta.receive_output(timeout=5) == FORBIDDEN
        # The teacher hears of the change; a later staff event reaches the teacher only.
        assert (await teacher.receive_json_from(timeout=5))["change"] == "role"
        await join_course(world.carol, world.course.join_code)
        event = await teacher.receive_json_from(timeout=5)
        assert event == {"kind": "roster.changed", "change": "joined", "user": "carol"}
        assert await ta.receive_nothing(timeout=0.5)
        await teacher.disconnect()

        # As a student now, a new socket is accepted, not as staff.
        await again.connect()
        assert await again.receive_json_from(timeout=5) == {"kind": "hello", "staff": False}
        await again.disconnect()

    async_to_sync(scenario)()


def test_a_removed_student_s_class_socket_is_closed(world):
    alice, bob = _course_socket(world, "alice"), _course_socket(world, "bob")
    membership = _membership(world, "alice")

    async def scenario():
        await _open(alice, bob)
        await remove_member(world.course, membership)
        assert await alice.receive_json_from(timeout=5) == RELOAD
        assert await alice.receive_output(timeout=5) == FORBIDDEN
        assert await bob.receive_nothing(timeout=0.5)  # roster news is for staff; bob stays
        await database_sync_to_async(actions.rename_course)(world.course, "New name")
        assert (await bob.receive_json_from(timeout=5))["name"] == "New name"
        assert await alice.receive_nothing(timeout=0.5)
        await bob.disconnect()

    async_to_sync(scenario)()


def test_a_demoted_ta_stops_watching_other_students_jobs_but_keeps_their_own(world):
    bobs_job, tas_job = _job(world, "bob"), _job(world, "ta")
    watching_bob = _job_socket(world, "ta", bobs_job)
    watching_own = _job_socket(world, "ta", tas_job)
    bob = _job_socket(world, "bob", bobs_job)
    membership = _membership(world, "ta")

    async def scenario():
        await _open(watching_bob, watching_own, bob, hello=False)
        await change_role(world.course, membership, "student")
        assert await watching_bob.receive_output(timeout=5) == FORBIDDEN
        event = await _send_job_event(bobs_job, 2)
        assert await bob.receive_json_from(timeout=5) == event  # the owner still hears it
        assert await watching_bob.receive_nothing(timeout=0.5)
        own_event = await _send_job_event(tas_job, 2)
        assert await watching_own.receive_json_from(timeout=5) == own_event
        await watching_own.disconnect()
        await bob.disconnect()

    async_to_sync(scenario)()


def test_a_removed_student_stops_watching_their_own_job(world):
    job = _job(world, "alice")
    alice, teacher = _job_socket(world, "alice", job), _job_socket(world, "teacher", job)
    membership = _membership(world, "alice")

    async def scenario():
        await _open(alice, teacher, hello=False)
        await remove_member(world.course, membership)
        assert await alice.receive_output(timeout=5) == FORBIDDEN
        event = await _send_job_event(job, 2)
        assert await teacher.receive_json_from(timeout=5) == event
        await teacher.disconnect()

    async_to_sync(scenario)()


def test_changes_in_another_class_or_a_promotion_close_nothing(world):
    job = _job(world, "alice")
    course_socket, job_socket = _course_socket(world, "alice"), _job_socket(world, "alice", job)
    here = _membership(world, "alice")

    async def scenario():
        await _open(course_socket)
        await _open(job_socket, hello=False)
        # Alice also joins the other class and is removed from it: her sockets here stay.
        there = await join_course(world.alice, world.other_course.join_code)
        await remove_member(world.other_course, there)
        # Promoted here: a student's socket is still hers to hold.
        await change_role(world.course, here, "ta")
        for socket in (course_socket, job_socket):
            assert await socket.receive_nothing(timeout=0.5)
        await database_sync_to_async(actions.rename_course)(world.course, "Still open")
        assert (await course_socket.receive_json_from(timeout=5))["name"] == "Still open"
        event = await _send_job_event(job, 2)
        assert await job_socket.receive_json_from(timeout=5) == event
        await course_socket.disconnect()
        await job_socket.disconnect()

    async_to_sync(scenario)()
