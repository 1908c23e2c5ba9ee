"""Hydra in a real browser: Chromium (driven by Playwright) logs into a real Home Assistant that
serves its frontend on 127.0.0.1, opens the "Hydra" dashboard the strategy builds, checks that
each view shows the workers' live values, and accepts an image waiting for review.

Two workers, as a home lab with two hosts has: ``gpubox`` in this process (GPUs, power, task
queue, knowledge, containers on the test's podman, voice on the test weights) and ``scorer``, a
worker process that scores images with the tiny CLIP and takes chapters. The dashboard is stored
as the UI's Add dashboard → Hydra stores it, so the strategy is what builds it. Screenshots of
every view go to ``$HYDRA_ARTIFACTS/dashboard`` (else the test's temporary directory); those in
``docs/screenshots`` are copied from a run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
import os
from pathlib import Path
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from homeassistant.auth.const import GROUP_ID_ADMIN
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.components.http.config import DATA_STORE as HTTP_CONFIG
from homeassistant.components.recorder import Recorder
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component
from playwright.async_api import (
    Locator,
    Page,
    async_playwright,
    expect,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.hydra.const import DOMAIN
from hydra_core.audit import AuditLog
from hydra_core.containers import ContainerService, EngineClient, ProtectionPolicy
from hydra_core.containers.models import HealingSettings
from hydra_core.containers.part import ContainersPart
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.history import GpuHistory
from hydra_core.gpu.part import GpuPart
from hydra_core.knowledge.client import KnowledgeClient
from hydra_core.power.manager import SETTINGS_FILE as POWER_SETTINGS_FILE, PowerManager
from hydra_core.power.part import PowerPart
from hydra_core.quality.client import QualityClient
from hydra_core.scheduler import Scheduler
from hydra_core.scheduler.part import TasksPart
from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.part import VoicePart
from hydra_core.voice.service import VoiceService
from hydra_core.worker.app import create_app
from tests.comfyui_standin import ComfyUIStandIn
from tests.creative.pipeline import STYLE_BOOK
from tests.fake_nvml import FakeNvml
from tests.podman import PodmanEngine
from tests.quality.conftest import encode, picture, tiny_worker_command
from tests.voice.weights import SPEAKER
from tests.worker.test_cli import free_port

from .conftest import (
    ControlledHandler,
    LoopbackWorker,
    entry_for,
    knowledge_part,
    make_scheduler,
    setup_entry,
    wait_until,
)
from .worker_process import WORKER_PYTHON, worker_process

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERNAME = "ada"
SCORER_TOKEN = "browser-scorer-token-0123456789"
# The dashboard a user adds under Settings → Dashboards → Add dashboard → Hydra.
DASHBOARD_ID = "dashboard_hydra"
DASHBOARD_PATH = "dashboard-hydra"
# A chapter of one scene, no characters: a background for the throne room at night.
CHAPTER = """\
Title: The Glass Crown

INT. THRONE ROOM - NIGHT

Candles gutter along the black marble.
"""
ONBOARDED = ["user", "core_config", "analytics", "integration"]
# How the Add dashboard dialog describes the strategy.
HYDRA_OFFER = (
    "GPUs, containers, queue, voice, review and the rest of Hydra, built from your workers."
)
# The views the strategy generates for the page's Home Assistant, as their paths.
GENERATED_VIEWS = """async () => {
  const hass = document.querySelector("home-assistant").hass;
  const strategy = customElements.get("ll-strategy-dashboard-hydra");
  return (await strategy.generate({}, hass)).views.map((view) => view.path);
}"""
# How the frontend moves between its pages without loading them again.
NAVIGATE = """(path) => {
  history.pushState(null, "", path);
  window.dispatchEvent(new CustomEvent("location-changed", { detail: { replace: false } }));
}"""
# A note the knowledge base ingests (as a feed entry Home Assistant's feedreader saw).
STORAGE_NOTE = (
    "The storage node moved its nightly backups to a new 20 TB ZFS pool named tank-backup;"
    " scrubs run every Sunday at 03:00."
)
# Generous: the first page load compiles the frontend's JavaScript on 2 CPU cores.
LOAD_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None, socket_enabled: None
) -> None:
    """As in conftest, with the recorder (history and logbook read it) set up before Home
    Assistant."""


@pytest.fixture
def disable_http_server() -> None:
    """Let Home Assistant's HTTP server start: the browser needs it (the test plugin's fixture of
    this name keeps it from binding in every other test)."""


@dataclass
class DashboardWorker(LoopbackWorker):
    """A worker with GPUs (their history and power), a task queue, knowledge and containers."""

    data_dir: Path = field(default_factory=Path)
    docker_host: str = ""
    models_dir: Path = field(default_factory=Path)
    handler: ControlledHandler = field(default_factory=ControlledHandler)
    scheduler: Scheduler | None = None

    def build_app(self) -> web.Application:
        """The worker application with those parts."""
        probe = NvmlProbe(self.nvml)
        bus = EventBus()
        audit = AuditLog(self.data_dir / "audit.db")
        knowledge = knowledge_part(self.data_dir, bus)
        self.scheduler = make_scheduler(
            self.data_dir, [*knowledge.task_handlers(), self.handler], probe, bus
        )
        containers = ContainerService(
            EngineClient(self.docker_host),
            policy=ProtectionPolicy.from_patterns(()),
            audit=audit,
            bus=bus,
            data_dir=self.data_dir,
            healing=HealingSettings(enabled=False),
            interval_s=0.5,
        )
        return create_app(
            info=self.info,
            token=self.token,
            probe=probe,
            audit=audit,
            bus=bus,
            parts=[
                GpuPart(GpuHistory(self.data_dir / "metrics.db", probe, interval_s=1)),
                PowerPart(PowerManager(probe, path=self.data_dir / POWER_SETTINGS_FILE, bus=bus)),
                ContainersPart(containers),
                knowledge,
                TasksPart(self.scheduler),
                VoicePart(
                    VoiceService(
                        VoiceOptions(
                            voice_port=0, voice_offline=True, stt_model="tiny.en", tts_voice=SPEAKER
                        ),
                        host="127.0.0.1",
                        data_dir=self.data_dir,
                        models_dir=self.models_dir,
                    )
                ),
            ],
            data_dir=self.data_dir,
        )

    async def stop(self) -> None:
        """Let the held task end, then stop serving."""
        self.handler.release.set()
        await super().stop()


@pytest.fixture
async def gpubox(
    nvml: FakeNvml, podman: PodmanEngine, voice_models_dir: Path, tmp_path: Path
) -> AsyncIterator[DashboardWorker]:
    """The in-process worker, following the test's podman with one container running."""
    podman.run("web", init=True)
    data_dir = tmp_path / "gpubox"
    data_dir.mkdir()
    async with DashboardWorker(
        nvml, data_dir=data_dir, docker_host=podman.docker_host, models_dir=voice_models_dir
    ) as worker:
        yield worker


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyUIStandIn]:
    """ComfyUI's API for the scorer's chapters (none is drawn here: they wait for the night)."""
    async with ComfyUIStandIn() as server:
        yield server


@pytest.fixture
async def scorer(tmp_path: Path, comfy: ComfyUIStandIn) -> AsyncIterator[str]:
    """A worker process with quality on the tiny CLIP that sends every image to review, and the
    creative pipeline."""
    data_dir = tmp_path / "scorer"
    style = data_dir / "creative" / "default" / "style.yaml"
    style.parent.mkdir(parents=True)
    style.write_text(STYLE_BOOK, encoding="utf-8")
    port = free_port()
    command = tiny_worker_command(
        WORKER_PYTHON,
        port,
        SCORER_TOKEN,
        data_dir,
        *("--name", "scorer", "--quality-threshold", "99", "--knowledge", "false"),
        *("--comfyui-urls", comfy.url),
    )
    async with worker_process(command, port, tmp_path / "scorer.log") as url:
        yield url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go."""
    folder = Path(os.environ.get("HYDRA_ARTIFACTS") or tmp_path / "artifacts") / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _store(hass_storage: dict[str, object], key: str, data: object) -> None:
    hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": data}


async def _frontend(hass: HomeAssistant, hass_storage: dict[str, object]) -> str:
    """Home Assistant serving its frontend on a free loopback port, onboarded, with the Hydra
    dashboard added; returns its URL."""
    _store(hass_storage, "onboarding", {"done": ONBOARDED})
    hass_storage["onboarding"]["version"] = 4  # type: ignore[index]
    _store(
        hass_storage,
        "lovelace_dashboards",
        {
            "items": [
                {
                    "id": DASHBOARD_ID,
                    "url_path": DASHBOARD_PATH,
                    "title": "Hydra",
                    "icon": "mdi:server",
                    "show_in_sidebar": True,
                    "require_admin": False,
                    "mode": "storage",
                }
            ]
        },
    )
    _store(
        hass_storage, f"lovelace.{DASHBOARD_ID}", {"config": {"strategy": {"type": "custom:hydra"}}}
    )
    port = free_port()
    http = {"server_host": "127.0.0.1", "server_port": port}
    assert await async_setup_component(hass, "http", {"http": http})
    assert await async_setup_component(hass, "frontend", {})
    for component in ("homeassistant", "history", "logbook", "assist_pipeline"):
        assert await async_setup_component(hass, component, {})
    await hass.async_block_till_done()
    # Keep the port: as a user confirms it, or the frontend asks.
    await hass.data[HTTP_CONFIG].async_promote_pending()
    return f"http://127.0.0.1:{port}"


async def _user(hass: HomeAssistant, provider: HassAuthProvider) -> str:
    """An administrator who logs in with a password; returns the password."""
    password = secrets.token_urlsafe(12)
    provider.data.add_auth(USERNAME, password)
    credentials = await provider.async_get_or_create_credentials({"username": USERNAME})
    user = await hass.auth.async_create_user("Ada", group_ids=[GROUP_ID_ADMIN])
    await hass.auth.async_link_user(user, credentials)
    return password


async def _open(
    page: Page, url: str, view: str, shots: Path, texts: tuple[str, ...], rows: dict[str, str]
) -> None:
    """Open a view of the Hydra dashboard; wait until it shows every text, and each entity row
    named in ``rows`` its value; keep a screenshot. Within the app, as its tabs do: no reload."""
    path = f"/{DASHBOARD_PATH}/{view}"
    await page.evaluate(NAVIGATE, path)
    try:
        for text in texts:
            await expect(page.get_by_text(text, exact=True).first).to_be_visible(
                timeout=LOAD_TIMEOUT_MS
            )
        for name, value in rows.items():
            await expect(_row(page, name).first).to_contain_text(value, timeout=LOAD_TIMEOUT_MS)
        await expect(page.locator("#ha-launch-screen")).to_have_count(0)
        assert urlsplit(page.url).path == path
    finally:
        # Also when something is missing: the screenshot shows what was there instead.
        await page.screenshot(path=shots / f"{view}.png")


def _row(page: Page, name: str) -> Locator:
    """The row of an entities card that shows the entity named ``name``."""
    return page.locator("hui-generic-entity-row", has_text=name)


async def _login(page: Page, url: str, password: str) -> None:
    """Log in through Home Assistant's login page."""
    await page.goto(url)
    await page.get_by_role("textbox", name="Username").fill(USERNAME, timeout=LOAD_TIMEOUT_MS)
    await page.get_by_role("textbox", name="Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("Ada", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    # Registered in the frontend's own element registry, which it installs as its core loads
    # (the script once ran first and defined it in the browser's, where the dashboard never
    # found it: "Timeout waiting for strategy element", one page load in three here).
    await page.wait_for_function(
        "() => customElements.get('ll-strategy-dashboard-hydra') !== undefined",
        timeout=LOAD_TIMEOUT_MS,
    )
    # The frontend then routes to its default dashboard's first view (``/home/overview`` or
    # ``/lovelace/0``, with the login's ``?auth_callback`` gone) by replacing the address: a
    # navigation before that would be undone, and the page would stay on the Overview.
    await page.wait_for_function(
        "() => location.pathname.split('/').filter(Boolean).length >= 2 && !location.search",
        timeout=LOAD_TIMEOUT_MS,
    )


async def test_hydra_dashboard_in_a_browser(
    hass: HomeAssistant,
    hass_storage: dict[str, object],
    local_auth: HassAuthProvider,
    hass_admin_user: MockUser,
    gpubox: DashboardWorker,
    scorer: str,
    shots: Path,
) -> None:
    """Log in through the login page, open every view of the Hydra dashboard, and accept the
    image waiting for review with the dashboard's button."""
    url = await _frontend(hass, hass_storage)
    password = await _user(hass, local_auth)
    gpubox_entry = entry_for(gpubox)
    await setup_entry(hass, gpubox_entry, "web")
    # Something in the knowledge base to search for from the dashboard.
    await KnowledgeClient(gpubox_entry.runtime_data.client).async_add_feed_entry(
        feed="Homelab notes",
        title="Storage node upgrade",
        link="http://127.0.0.1/notes/storage",
        summary=STORAGE_NOTE,
        published=None,
    )
    chunks = "sensor.gpubox_knowledge_chunks"
    await wait_until(lambda: hass.states.get(chunks).state not in ("0", "unknown"), within=60)
    scorer_entry = MockConfigEntry(
        domain=DOMAIN, title="scorer", data={CONF_URL: scorer, CONF_TOKEN: SCORER_TOKEN}
    )
    await setup_entry(hass, scorer_entry)
    quality = QualityClient(scorer_entry.runtime_data.client)
    for kind in ("gradient", "stripes"):
        await quality.async_submit_asset(encode(picture(kind)), prompt=f"a {kind}")
    waiting = "sensor.scorer_images_awaiting_review"
    await wait_until(lambda: hass.states.get(waiting).state == "2")
    # A chapter for the overnight pipeline: it waits, at 0 %.
    await hass.services.async_call(
        DOMAIN,
        "process_chapter",
        {"text": CHAPTER, "start": "overnight", "config_entry_id": scorer_entry.entry_id},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_admin_user.id),
    )
    chapter = "sensor.scorer_chapter_the_glass_crown"
    await wait_until(lambda: hass.states.get(chapter) is not None)
    await hass.services.async_call(
        DOMAIN,
        "queue_task",
        {"kind": "test", "payload": {"hold": True}, "config_entry_id": gpubox_entry.entry_id},
        blocking=True,
        return_response=True,
    )

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            shots.parent / "chromium-profile",
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await _login(page, url, password)
            # As the gauge shows it: whole degrees.
            temperature = round(float(hass.states.get("sensor.gpubox_gpu_0_temperature").state))
            running = {"gpubox Running tasks": "1"}
            await _open(page, url, "overview", shots, (f"{temperature} °C",), running)
            history = page.locator("hui-history-graph-card", has_text="GPU temperature")
            await expect(history).to_contain_text(f"Temperature {temperature} °C")
            views = await page.evaluate(GENERATED_VIEWS)
            # Neither worker is part of a cluster: no such view.
            assert views == [
                *("overview", "containers", "queue", "voice", "review", "creative", "knowledge"),
                "models",
            ]
            await _open(page, url, "containers", shots, ("web",), {"web State": "Running"})
            await _open(page, url, "queue", shots, ("test (outcome=succeed, hold=True)",), running)
            stage = hass.states.get(chapter).attributes["state"]
            await _open(
                page, url, "creative", shots, ("scorer Chapter The Glass Crown",), {"State": stage}
            )
            voice = {
                "gpubox Speech-to-text model": "tiny.en",
                "gpubox Text-to-speech voice": SPEAKER,
            }
            await _open(page, url, "voice", shots, ("Recent voice turns",), voice)
            # The assistant's last turns: Home Assistant's Debug page of its (only) pipeline.
            assistant = page.locator("hui-button-row", has_text="Home Assistant")
            await assistant.get_by_text("Last turns").click()
            await page.wait_for_function(
                "() => location.pathname.startsWith('/config/voice-assistants/debug/')",
                timeout=LOAD_TIMEOUT_MS,
            )
            counted = {"gpubox Knowledge chunks": hass.states.get(chunks).state}
            await _open(page, url, "knowledge", shots, ("Search the knowledge base",), counted)
            # Searched in Assist, opened from the view: Hydra answers with the note's source.
            await (
                page.locator("hui-button-row", has_text="what do we know about")
                .get_by_text("Search")
                .click()
            )
            request = page.get_by_role("textbox", name="Enter a request")
            await request.fill("what do we know about the backup pool", timeout=LOAD_TIMEOUT_MS)
            await request.press("Enter")
            answer = page.get_by_text("That is from Storage node upgrade.", exact=False)
            await expect(answer).to_contain_text("20 TB ZFS pool", timeout=LOAD_TIMEOUT_MS)
            await page.screenshot(path=shots / "knowledge-search.png")
            await page.keyboard.press("Escape")
            vram = hass.states.get("sensor.scorer_hydra_clip_vram").attributes["friendly_name"]
            await _open(page, url, "models", shots, (), {vram: "GB"})
            await _open(page, url, "review", shots, ("scorer: Awaiting review",), {})
            waiting_row = _row(page, "scorer Images awaiting review")
            await expect(waiting_row).to_contain_text("2")
            await page.get_by_text("scorer Accept image", exact=True).click()
            await wait_until(lambda: hass.states.get(waiting).state == "1")
            await expect(waiting_row).to_contain_text("1")
            accepted = await quality.async_assets(state="accepted")
            assert [asset.prompt for asset in accepted] == ["a gradient"]
            await page.screenshot(path=shots / "review-accepted.png")

            # Settings → Dashboards → Add dashboard offers Hydra beside the built-in ones.
            await page.evaluate(NAVIGATE, "/config/lovelace/dashboards")
            await page.get_by_role("button", name="Add dashboard").click(timeout=LOAD_TIMEOUT_MS)
            offer = page.get_by_text(HYDRA_OFFER, exact=True)
            await expect(offer).to_be_visible(timeout=LOAD_TIMEOUT_MS)
            await page.screenshot(path=shots / "add-dashboard.png")
        finally:
            await context.close()
