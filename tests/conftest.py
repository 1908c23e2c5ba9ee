"""Shared test set-up.

The project's ``custom_components`` package is imported first so that, under Home Assistant's
test plugin, ``hass`` finds the Hydra integration rather than the plugin's own testing package.
The real container engine (podman serving the Docker API) comes from ``tests.podman_fixtures``.
"""

import custom_components  # noqa: F401

pytest_plugins = ["tests.podman_fixtures"]
