"""Constants of the Hydra integration."""

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "hydra"
LOGGER = logging.getLogger(__package__)

CONF_SCAN_INTERVAL: Final = "scan_interval"
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=30)
MIN_SCAN_INTERVAL_S: Final = 5
MAX_SCAN_INTERVAL_S: Final = 3600

MANUFACTURER: Final = "Hydra"
