"""Benchmarks reuse the integration tests' real worker and Home Assistant fixtures."""

import custom_components  # noqa: F401
from tests.integration.conftest import (  # noqa: F401
    auto_enable_custom_integrations,
    config_entry,
    init_integration,
    worker,
)
