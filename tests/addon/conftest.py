"""Fixtures for the add-on's tests, which run under both venvs."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def loopback_sockets(request: pytest.FixtureRequest) -> None:
    """Allow the tests' loopback connections where Home Assistant's test plugin is installed.

    That plugin (in ``.venv``) refuses every socket unless ``socket_enabled`` is requested, and
    still keeps connections on 127.0.0.1; the worker's venv has no such plugin.
    """
    try:
        request.getfixturevalue("socket_enabled")
    except pytest.FixtureLookupError:
        return
