"""Pytest fixtures for a real container engine (podman serving the Docker API; tests/podman.py).

Register with ``pytest_plugins = ["tests.podman_fixtures"]`` in the root conftest, or import
``podman`` and ``podman_engine`` into a conftest below it.

- ``podman_engine`` (session): one started ``PodmanEngine``, stopped (every container, the
  service, its temp dir) at the end of the session.
- ``podman`` (function): the same engine; every container created during the test is removed
  afterwards, so tests do not see each other's containers.

No threads are started (Home Assistant's test plugin checks for leftovers): the engine is a
subprocess and every call is a blocking request on its unix socket. Home Assistant's plugin
(pytest-socket) refuses ``connect()`` to any unix socket, ``socket_enabled`` or not; the
helpers connect past that guard, and during a test that uses ``podman`` every ``connect()`` to
the engine's socket is let through, so the code under test (aiohttp's UnixConnector,
aiodocker) reaches it too. Other addresses stay guarded.
If the machine cannot run the engine (not root, packages missing), the fixture fails with a
message that says to run ``scripts/system-setup``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.podman import PodmanEngine, PodmanUnavailable, allow_unix_connect


@pytest.fixture(scope="session")
def podman_engine() -> Iterator[PodmanEngine]:
    """A started podman engine for the whole session (``docker_host``, ``socket_path``)."""
    engine = PodmanEngine()
    try:
        engine.start()
    except PodmanUnavailable as err:
        pytest.fail(f"container engine unavailable: {err}", pytrace=False)
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.fixture
def podman(podman_engine: PodmanEngine) -> Iterator[PodmanEngine]:
    """The session's engine; containers created during the test are removed after it."""
    if not podman_engine.running:
        pytest.fail(f"podman service died: {podman_engine.log_tail()}", pytrace=False)
    before = podman_engine.container_ids()
    with allow_unix_connect(podman_engine.socket_path):
        yield podman_engine
    if podman_engine.running:
        podman_engine.remove_all(keep=before)
