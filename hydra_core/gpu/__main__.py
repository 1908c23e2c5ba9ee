"""``python -m hydra_core.gpu``: print what the NVML probe sees, as JSON (exit 1 if no GPU)."""

from __future__ import annotations

import json
import sys

from ..wire import dump
from .nvml import NvmlProbe


def main() -> int:
    """Probe NVML once."""
    probe = NvmlProbe()
    probe.start()
    report = probe.read()
    probe.close()
    print(json.dumps(dump(report), indent=2))
    return 0 if report.available else 1


if __name__ == "__main__":
    sys.exit(main())
