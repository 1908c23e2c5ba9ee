"""Command-line entry point: ``python -m hydra_core.worker`` or ``hydra-worker``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import contextlib
import logging
import signal
import sys

from aiohttp import web

from .. import __version__
from ..audit import AuditLog
from ..events import EventBus
from ..gpu import create_probe
from ..gpu.options import GpuOptions
from ..models import WorkerInfo
from .app import create_app
from .config import (
    TOKEN_FILE,
    ConfigError,
    CoreOptions,
    WorkerConfig,
    ensure_token,
    ensure_worker_id,
    load_config,
)
from .lock import DataDirLockedError, data_dir_lock
from .part import BuildContext, Part
from .parts import PARTS

_LOGGER = logging.getLogger("hydra_core.worker")
AUDIT_FILE = "audit.db"
# The exit status when another worker holds the data dir (2: bad options, 1: cannot serve).
EXIT_DATA_DIR_IN_USE = 3


def build_parts(context: BuildContext, kinds: Sequence[type[Part]] = PARTS) -> list[Part]:
    """The parts the options ask for, each built with the ones before it at hand."""
    for kind in kinds:
        if (part := kind.build(context)) is not None:
            context.built.append(part)
    return context.built


async def start_site(runner: web.AppRunner, core: CoreOptions) -> web.TCPSite:
    """Listen on the configured address: HTTPS (and wss) with a certificate, HTTP without."""
    site = web.TCPSite(runner, core.host, core.port, ssl_context=core.tls_context())
    await site.start()
    return site


async def serve(
    config: WorkerConfig, stop: asyncio.Event, kinds: Sequence[type[Part]] = PARTS
) -> None:
    """Run the worker until ``stop`` is set."""
    core = config.core
    token = ensure_token(core)
    info = WorkerInfo(
        worker_id=ensure_worker_id(core.data_dir), name=core.name, version=__version__
    )
    gpu = config[GpuOptions]
    probe = create_probe(gpu.gpu_backend, simulated_count=gpu.simulated_gpus)
    bus = EventBus()
    audit = AuditLog(core.data_dir / AUDIT_FILE)
    parts = build_parts(BuildContext(config=config, probe=probe, bus=bus, audit=audit), kinds)
    app = create_app(
        info=info,
        token=token,
        probe=probe,
        audit=audit,
        bus=bus,
        parts=parts,
        data_dir=core.data_dir,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = await start_site(runner, core)
    _LOGGER.info(
        "Hydra worker %s (%s) %s listening on %s; GPU backend %s; parts: %s",
        info.name,
        info.worker_id,
        __version__,
        site.name,
        gpu.gpu_backend,
        ", ".join(part.name for part in parts),
    )
    if not core.token:
        _LOGGER.info("Token kept in %s", core.data_dir / TOKEN_FILE)
    try:
        await stop.wait()
    finally:
        _LOGGER.info("Stopping")
        await runner.cleanup()


async def _main(config: WorkerConfig, kinds: Sequence[type[Part]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(config, stop, kinds)


def main(argv: Sequence[str] | None = None, parts: Sequence[type[Part]] = PARTS) -> int:
    """Parse options, then serve until SIGINT or SIGTERM; ``parts``: the kinds of part it may
    build (the tests add test task kinds)."""
    try:
        config = load_config(argv)
    except ConfigError as err:
        print(f"hydra-worker: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.core.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _LOGGER.debug("Options: %s", config.redacted())
    with contextlib.ExitStack() as stack:
        # Before anything reads or changes the data dir: one worker per data dir.
        try:
            stack.enter_context(data_dir_lock(config.core.data_dir))
        except DataDirLockedError as err:
            _LOGGER.error("Not starting: %s", err)
            return EXIT_DATA_DIR_IN_USE
        except OSError as err:
            _LOGGER.error("Cannot use the data dir %s: %s", config.core.data_dir, err)
            return 1
        try:
            asyncio.run(_main(config, parts))
        except OSError as err:
            _LOGGER.error("Cannot serve on %s:%s: %s", config.core.host, config.core.port, err)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
