"""manifest.json, hacs.json, strings and icons hold what HACS, hassfest and the frontend need."""

from __future__ import annotations

import json
from pathlib import Path
import re
import tomllib

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION

from custom_components.hydra import button, sensor
from custom_components.hydra.parts import forecasts, power, voice
from custom_components.hydra.parts.cluster import entities as cluster
from custom_components.hydra.parts.containers import entities as containers
from custom_components.hydra.parts.creative import entities as creative
from custom_components.hydra.parts.knowledge import entities as knowledge
from custom_components.hydra.parts.models import entities as models
from custom_components.hydra.parts.quality import entities as quality
from custom_components.hydra.parts.tasks import entities as tasks
from custom_components.hydra.registry import PARTS
from hydra_core.worker.parts import PARTS as WORKER_PARTS

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "custom_components" / "hydra"
MANIFEST = json.loads((COMPONENT / "manifest.json").read_text())
STRINGS = json.loads((COMPONENT / "strings.json").read_text())
ICONS = json.loads((COMPONENT / "icons.json").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# hassfest: domain and name first, the rest sorted; these are the keys a custom integration needs.
REQUIRED_KEYS = {"domain", "name", "codeowners", "documentation", "issue_tracker", "version"}
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}


def test_manifest_follows_hassfest_rules() -> None:
    """The keys hassfest checks for a custom integration."""
    assert MANIFEST["domain"] == COMPONENT.name
    assert MANIFEST.keys() >= REQUIRED_KEYS
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert MANIFEST["iot_class"] in {
        "assumed_state",
        "cloud_polling",
        "cloud_push",
        "local_polling",
        "local_push",
        "calculated",
    }
    assert MANIFEST["integration_type"] in {"device", "hub", "service", "system", "helper"}
    assert MANIFEST["config_flow"] is (COMPONENT / "config_flow.py").exists()
    assert AwesomeVersion(MANIFEST["version"]).valid
    assert all(owner.startswith("@") for owner in MANIFEST["codeowners"])


def test_manifest_requires_this_library_version() -> None:
    """Home Assistant installs exactly the hydra_core release the integration was built with."""
    project = PYPROJECT["project"]
    assert MANIFEST["requirements"] == [f"{project['name']}=={project['version']}"]
    assert MANIFEST["version"] == project["version"]
    # HA must never pull in the worker's heavy extras.
    assert not any("[" in requirement for requirement in MANIFEST["requirements"])


def test_hacs_json() -> None:
    """HACS accepts the repository and knows the oldest Home Assistant it supports."""
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs["name"] == MANIFEST["name"]
    assert set(hacs) <= HACS_KEYS
    assert AwesomeVersion(hacs["homeassistant"]) <= AwesomeVersion(HA_VERSION)


def test_every_entity_has_a_name_and_an_icon() -> None:
    """Each translation key the entities use has English text and an icon, and no text is unused."""
    platforms = {
        "sensor": (
            *sensor.GPU_SENSORS,
            *sensor.WORKER_SENSORS,
            *containers.CONTAINER_SENSORS,
            *tasks.QUEUE_SENSORS,
            *tasks.WORK_SENSORS,
            quality.AWAITING_REVIEW_COUNT,
            creative.CHAPTER_PROGRESS,
            *knowledge.KNOWLEDGE_SENSORS,
            models.MODEL_VRAM,
            forecasts.DAYS_UNTIL_FULL,
            forecasts.PREDICTED_PROBLEMS,
            forecasts.ENGINE_DISK,
            cluster.CLUSTER_NODES,
            *cluster.NODE_SENSORS,
        ),
        "binary_sensor": (containers.PROBLEM, containers.ENGINE, cluster.NODE_CONNECTIVITY),
        "button": (
            button.SEND_BRIEFING,
            containers.RESTART,
            quality.ACCEPT_ASSET,
            quality.REJECT_ASSET,
            models.UNLOAD_MODEL,
        ),
        "image": (quality.AWAITING_REVIEW_IMAGE,),
        "switch": (containers.RUNNING, containers.SELF_HEALING, tasks.AUTONOMOUS_WORK),
        "number": (*tasks.SCHEDULER_NUMBERS, *voice.VOICE_NUMBERS),
        "select": (
            *voice.VOICE_SELECTS,
            power.POWER_PROFILE,
            power.POWER_PROFILE_ALL,
            models.ACTIVE_LLM,
        ),
        "todo": (tasks.QUEUE,),
        "update": voice.MODEL_UPDATES,
    }
    assert set(STRINGS["entity"]) == set(platforms)
    for platform, descriptions in platforms.items():
        keys = {
            description.translation_key
            for description in descriptions
            if description.translation_key
        }
        assert keys == set(STRINGS["entity"][platform])
        assert keys <= set(ICONS["entity"][platform])


def test_enum_sensors_translate_every_state() -> None:
    """Every state an enum sensor can take has its text, so none shows as a raw key."""
    for description in containers.CONTAINER_SENSORS:
        if description.options:
            states = STRINGS["entity"]["sensor"][description.translation_key]["state"]
            assert set(description.options) == set(states)


def test_power_profiles_translate_every_option() -> None:
    """Each power profile has its text, in the selects and in the action's selector."""
    for description in (power.POWER_PROFILE, power.POWER_PROFILE_ALL):
        states = STRINGS["entity"]["select"][description.translation_key]["state"]
        assert set(description.options) == set(states)
        assert set(states) <= set(ICONS["entity"]["select"][description.translation_key]["state"])
    assert set(power.POWER_PROFILE.options) == set(STRINGS["selector"]["power_profile"]["options"])


def test_every_translated_message_exists() -> None:
    """Each translation key the code raises or reports with is in strings.json."""
    source = "\n".join(path.read_text() for path in COMPONENT.rglob("*.py"))
    used = set(re.findall(r'translation_key="([a-z_]+)"', source))
    defined = (
        set(STRINGS["exceptions"])
        | set(STRINGS["issues"])
        | {key for platform in STRINGS["entity"].values() for key in platform}
    )
    assert used
    assert used <= defined
    errors = set(re.findall(r'"(invalid_url|cannot_connect|invalid_auth|unknown)"', source))
    assert errors <= set(STRINGS["config"]["error"])
    reasons = set(re.findall(r'reason="([a-z_]+)"', source))
    fix_flow_reasons = {
        reason
        for issue in STRINGS["issues"].values()
        for reason in issue.get("fix_flow", {}).get("abort", {})
    }
    assert reasons <= set(STRINGS["config"]["abort"]) | fix_flow_reasons


def test_each_part_listens_to_what_its_worker_part_emits() -> None:
    """The integration's parts carry the worker's part names, and route only event types the
    worker's part of that name says it emits (a typo would silently drop every such event)."""
    worker_parts = {part.name: part for part in WORKER_PARTS}
    for part in PARTS:
        assert part.name in worker_parts, part.name
        assert part.events <= set(worker_parts[part.name].event_types), part.name
