"""The class websocket through the real stack (origin check → session auth → consumer) and
the real Redis channel layer: who gets in, who is refused with 4403, who hears what."""

import contextlib

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests import live
from tests.conftest import PERSONAS
from webapp.accounts import actions
from webapp.asgi import application

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
FORBIDDEN = 4403


def _session_cookie(world, persona: str) -> bytes:
    if persona == "anon":
        return b""
    client = Client()
    client.force_login(world.user(persona))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def _communicator(world, persona: str, course_id: int, origin: bytes = b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    cookie = _session_cookie(world, persona)
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/courses/{course_id}/", headers=headers)


async def _first_message(communicator):
    connected, _ = await communicator.connect()
    assert connected
    try:
        return await communicator.receive_output(timeout=5)
    finally:
        await communicator.disconnect()


EXPECTED = {
    "anon": None,
    "carol": None,
    "other_teacher": None,
    "alice": False,
    "bob": False,
    "ta": True,
    "teacher": True,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_members_get_in_and_others_are_closed_with_4403(world, persona):
    live.require_redis()
    message = async_to_sync(_first_message)(_communicator(world, persona, world.course.pk))
    if EXPECTED[persona] is None:
        assert message == {"type": "websocket.close", "code": FORBIDDEN}
    else:
        assert message["type"] == "websocket.send"
        assert f'"staff": {str(EXPECTED[persona]).lower()}' in message["text"]


def test_foreign_origin_is_refused(world):
    communicator = _communicator(world, "teacher", world.course.pk, origin=b"https://evil.example")

    async def scenario():
        connected, _ = await communicator.connect(timeout=5)
        # The refused application ends (or is cancelled) inside this event loop, so closing
        # the loop has no task left to wait for (it once hung there for the whole timeout).
        with contextlib.suppress(TimeoutError):
            await communicator.wait(timeout=2)
        return connected

    assert not async_to_sync(scenario)()


def test_teacher_hears_a_student_join_and_students_do_not(world):
    live.require_redis()

    teacher = _communicator(world, "teacher", world.course.pk)
    alice = _communicator(world, "alice", world.course.pk)

    async def scenario():
        for communicator in (teacher, alice):
            await communicator.connect()
            await communicator.receive_json_from(timeout=5)  # hello

        await database_sync_to_async(actions.join_course)(world.carol, world.course.join_code)
        event = await teacher.receive_json_from(timeout=5)
        assert event == {"kind": "roster.changed", "change": "joined", "user": "carol"}
        assert await alice.receive_nothing(timeout=0.5)
        await database_sync_to_async(actions.rename_course)(world.course, "改名したクラス")
        for communicator in (teacher, alice):
            renamed = await communicator.receive_json_from(timeout=5)
            assert renamed == {"kind": "course.changed", "name": "改名したクラス"}
            await communicator.disconnect()

    async_to_sync(scenario)()
