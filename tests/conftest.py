"""Shared test set-up.

The project's ``custom_components`` package is imported first so that, under Home Assistant's
test plugin, ``hass`` finds the Hydra integration rather than the plugin's own testing package.
The real container engine (podman serving the Docker API) comes from ``tests.podman_fixtures``.
"""

import contextlib

import pytest

import custom_components  # noqa: F401

pytest_plugins = ["tests.podman_fixtures"]


@pytest.fixture
def loopback_sockets(request: pytest.FixtureRequest) -> None:
    """Allow TCP sockets where pytest-socket (Home Assistant's test plugin) blocks them.

    Home Assistant's plugin still refuses connections to anything but 127.0.0.1 once
    ``socket_enabled`` lifts the block; without the plugin (the worker's venv) nothing is blocked.
    """
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")
