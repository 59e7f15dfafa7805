"""An idle page's websockets stay open: a class socket and a job socket held quiet for a minute
against real daphne and the real Redis channel layer are never closed, and then still hear the
next event. (Before the fix redis-py's 5 s read timeout cut channels_redis' 5 s blocking pop and
daphne closed every socket with 1011 after about 6 s.)"""

import asyncio
import base64
import json
import os
import struct
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from tests import live
from webapp import launcher
from webapp.accounts import actions
from webapp.datasets.models import Dataset
from webapp.jobs import broadcast
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.tasks import job_group

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]
IDLE_SECONDS = 60
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class Socket:
    """A small RFC 6455 client (the test process runs Twisted's txaio, so no autobahn asyncio):
    it answers pings as a browser does, records every message, and never reconnects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.messages: asyncio.Queue = asyncio.Queue()
        self.opened_at = time.monotonic()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str, path: str, cookie: str) -> "Socket":
        address = urlsplit(base)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {base}\r\nCookie: {cookie}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)  # a client masks every frame
        assert len(payload) < 126
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def _frame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)  # servers do not mask

    async def _read(self) -> None:
        code = None
        try:
            while True:
                opcode, payload = await self._frame()
                if opcode == TEXT:
                    self.messages.put_nowait(json.loads(payload))
                elif opcode == PING:
                    self._send(PONG, payload)
                elif opcode == CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            code = 1006  # dropped without a closing handshake
        self.closed.set_result((code, time.monotonic()))
        self.writer.close()

    def lifetime(self) -> str:
        if not self.closed.done():
            return "open"
        code, at = self.closed.result()
        return f"closed with code {code} after {at - self.opened_at:.1f} s"

    async def close(self) -> None:
        if not self.closed.done():
            self._send(CLOSE, struct.pack("!H", 1000))
            await asyncio.wait_for(self.closed, 10)


@pytest.fixture
def daphne():
    live.require_redis()
    log = live.ROOT / "test-artifacts" / "logs" / "daphne-idle-socket.log"
    proc, url = live.start_daphne(log)
    yield url, log
    live.stop(proc)


def _job_with_one_event(world) -> Job:
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.alice,
        name="digits",
        kind="classification",
        status="ready",
        head=1,
    )
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=1,
        spec={"model": "simple_cnn", "epochs": 4},
        status="running",
        attempts=1,
    )
    JobEvent.objects.create(job=job, number=1, attempt=1, seq=0, kind="started", data={})
    return job


def _send_job_event(job: Job) -> None:
    """What the reporter does with a trainer's event: store it, then send it to the job's group."""
    stored = JobEvent.objects.create(
        job=job, number=2, attempt=1, seq=1, kind="log", data={"message": "still here"}
    )
    message = {"type": "job.event", "event": stored.as_message()}
    assert broadcast.send_now(job_group(job.pk), message)


def test_idle_course_and_job_sockets_stay_open_for_a_minute_and_then_hear_events(
    world, daphne, settings
):
    base, log = daphne
    # Sign the session as the server will read it (daphne runs with the data folder's key).
    settings.SECRET_KEY = launcher.secret_key(Path(settings.DATA_DIR))
    client = Client()
    client.force_login(world.teacher)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    job = _job_with_one_event(world)

    async def scenario():
        course_socket = await Socket.open(base, f"/ws/courses/{world.course.pk}/", cookie)
        job_socket = await Socket.open(base, f"/ws/jobs/{job.pk}/", cookie)
        hello = await asyncio.wait_for(course_socket.messages.get(), 10)
        assert hello == {"kind": "hello", "staff": True}
        replayed = await asyncio.wait_for(job_socket.messages.get(), 10)
        assert replayed["seq"] == 1 and replayed["type"] == "started"

        sockets = {"course": course_socket, "job": job_socket}
        await asyncio.wait([socket.closed for socket in sockets.values()], timeout=IDLE_SECONDS)
        lifetimes = {name: socket.lifetime() for name, socket in sockets.items()}
        assert lifetimes == {"course": "open", "job": "open"}, lifetimes

        await database_sync_to_async(actions.rename_course)(world.course, "静かなクラス")
        renamed = await asyncio.wait_for(course_socket.messages.get(), 10)
        assert renamed == {"kind": "course.changed", "name": "静かなクラス"}
        await database_sync_to_async(_send_job_event)(job)
        event = await asyncio.wait_for(job_socket.messages.get(), 10)
        assert event["seq"] == 2 and event["message"] == "still here"
        for socket in sockets.values():
            assert socket.lifetime() == "open", socket.lifetime()
            await socket.close()

    asyncio.run(scenario())
    assert "Timeout reading" not in log.read_text(errors="replace")
