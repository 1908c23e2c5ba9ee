"""Announcing the Wyoming server with zeroconf, so Home Assistant's wyoming integration finds it.

Home Assistant's wyoming integration listens for ``_wyoming._tcp.local.`` and offers to add what it
finds (Settings → Devices & services → Discovered). The add-on announces the server through the
Supervisor instead (``addon/run.sh``), which works without multicast.
"""

from __future__ import annotations

import logging
import socket

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."


def _instance_name(name: str) -> str:
    # DNS-SD instance names are free text but may not hold dots (they separate labels).
    return name.replace(".", "-").strip() or socket.gethostname()


def service_info(name: str, port: int, addresses: list[str]) -> ServiceInfo:
    """The zeroconf record for a Wyoming server called ``name`` on ``port``."""
    instance = _instance_name(name)
    return ServiceInfo(
        SERVICE_TYPE,
        f"{instance}.{SERVICE_TYPE}",
        port=port,
        parsed_addresses=addresses,
        server=f"{socket.gethostname()}.local.",
        properties={"name": instance},
    )


def _local_addresses() -> list[str]:
    """The host's IPv4 addresses other than loopback, as Home Assistant needs one to connect."""
    addresses: set[str] = set()
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addresses.add(str(sockaddr[0]))
    except OSError:
        pass
    return sorted(address for address in addresses if not address.startswith("127."))


class ZeroconfAnnouncer:
    """Registers the record on start and withdraws it on stop; failures are logged, not fatal."""

    def __init__(self, name: str, port: int, addresses: list[str] | None = None) -> None:
        self._name = name
        self._port = port
        self._addresses = addresses
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    async def start(self) -> None:
        """Announce; without an address or a network, say so and carry on."""
        addresses = self._addresses if self._addresses is not None else _local_addresses()
        if not addresses:
            _LOGGER.info("No network address to announce the voice server on; skipping zeroconf")
            return
        self._info = service_info(self._name, self._port, addresses)
        try:
            self._zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
            await self._zeroconf.async_register_service(self._info)
        except (OSError, ValueError) as err:
            _LOGGER.warning("Could not announce the voice server with zeroconf: %s", err)
            await self.stop()
            return
        _LOGGER.info("Voice server announced as %s", self._info.name)

    async def stop(self) -> None:
        """Withdraw the record and close zeroconf."""
        if self._zeroconf is None:
            return
        zeroconf, self._zeroconf = self._zeroconf, None
        try:
            if self._info is not None:
                await zeroconf.async_unregister_service(self._info)
        except (OSError, ValueError) as err:
            _LOGGER.debug("Could not withdraw the zeroconf record: %s", err)
        finally:
            await zeroconf.async_close()
