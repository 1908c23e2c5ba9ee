"""Benchmarks reuse the tests' real worker, Home Assistant and container engine fixtures."""

import custom_components  # noqa: F401
from tests.integration.conftest import (  # noqa: F401
    auto_enable_custom_integrations,
    config_entry,
    container_worker,
    containers_entry,
    init_integration,
    nvml,
    worker,
)
from tests.podman_fixtures import podman, podman_engine  # noqa: F401
