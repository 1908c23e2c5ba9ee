"""Config flow: add a worker by URL and token, or from the add-on's discovery."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, override

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import probatio

from hydra_core.client import HydraAuthError, HydraCertificateError, HydraClient, HydraError
from hydra_core.models import Actor, WorkerInfo

from .const import (
    CONF_CONTAINERS,
    CONF_DEFAULT_KIND,
    CONF_FINGERPRINT,
    CONF_NOTIFY_FAILURE,
    CONF_NOTIFY_SUCCESS,
    CONF_NOTIFY_TARGETS,
    CONF_REMOVE_AFTER,
    CONF_REVIEW,
    CONF_REVIEW_TARGETS,
    CONF_SCAN_INTERVAL,
    DEFAULT_KIND,
    DEFAULT_REMOVE_AFTER_H,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    LOGGER,
    MAX_REMOVE_AFTER_H,
    MAX_SCAN_INTERVAL_S,
    MIN_SCAN_INTERVAL_S,
)
from .form import SECRET_SELECTOR, normalise_url, targets_selector
from .parts.cluster.coordinator import HydraClusterCoordinator
from .parts.cluster.form import RouteLineError, parse_routes, route_error, routes_text
from .parts.containers.coordinator import HydraContainerCoordinator
from .parts.quality.coordinator import HydraQualityCoordinator
from .parts.tasks.coordinator import HydraTaskCoordinator
from .routine import check_routine_options, routine_fields

URL_SELECTOR = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.URL, autocomplete="off")
)
CONF_ROUTES = "routes"
# Who the worker's audit log names for a change of its routing rules made here (an options
# flow is an administrator's, and Home Assistant does not say which).
OPTIONS_ACTOR = Actor(type="user", name="Home Assistant options")


def _worker_schema(url: str | None = None) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(CONF_URL, default=url): URL_SELECTOR,
            probatio.Required(CONF_TOKEN): SECRET_SELECTOR,
        }
    )


type _Step = Callable[[dict[str, Any]], Awaitable[ConfigFlowResult]]


class HydraConfigFlow(ConfigFlow, domain=DOMAIN):
    """Adds one Hydra worker per entry, identified by the worker's own id.

    An https:// worker's certificate is verified against the CAs Home Assistant trusts. One
    that fails (self-signed, or not the one pinned before) is shown to the user by its SHA-256
    fingerprint; only once they confirm it is it pinned, in the entry, for every later call.
    """

    VERSION = 1

    _discovery: HassioServiceInfo
    # The certificate this flow accepts (the entry's, the add-on's or one the user confirmed).
    _pin: str | None = None
    # A certificate the worker presented that awaits the user's word (its fingerprint, the
    # worker's URL, the error it caused), and the step that goes on, with what was entered,
    # once the user confirms it.
    _presented: dict[str, str] | None = None
    _resume: tuple[_Step, dict[str, Any]]

    async def _async_try_worker(
        self, user_input: dict[str, Any]
    ) -> tuple[WorkerInfo | None, dict[str, Any], dict[str, str]]:
        """Check URL and token against the worker; return its identity or form errors (an
        untrusted certificate: none, but ``_presented`` set)."""
        url = normalise_url(user_input[CONF_URL])
        if url is None:
            return None, user_input, {CONF_URL: "invalid_url"}
        data = {CONF_URL: url, CONF_TOKEN: user_input[CONF_TOKEN].strip()}
        if self._pin is not None:
            data[CONF_FINGERPRINT] = self._pin
        client = HydraClient(
            async_get_clientsession(self.hass), url, data[CONF_TOKEN], fingerprint=self._pin
        )
        try:
            info = await client.async_health()
            # Health needs no token; status proves the token is right.
            await client.async_status()
        except HydraAuthError:
            return None, data, {CONF_TOKEN: "invalid_auth"}
        except HydraCertificateError as err:
            return None, data, await self._async_hold_certificate(client, err)
        except HydraError as err:
            LOGGER.debug("Cannot reach Hydra worker at %s: %s", url, err)
            return None, data, {CONF_URL: "cannot_connect"}
        except Exception:
            LOGGER.exception("Unexpected error checking the Hydra worker at %s", url)
            return None, data, {"base": "unknown"}
        return info, data, {}

    async def _async_hold_certificate(
        self, client: HydraClient, err: HydraCertificateError
    ) -> dict[str, str]:
        """Keep the certificate the worker presented for the user to judge; the form errors
        when it cannot be read (the worker went away meanwhile)."""
        try:
            fingerprint = err.fingerprint or await client.async_certificate_fingerprint()
        except HydraError:
            return {CONF_URL: "cannot_connect"}
        self._presented = {"url": client.url, "fingerprint": fingerprint, "error": str(err)}
        return {}

    async def _async_ask_certificate(
        self, step: _Step, user_input: dict[str, Any]
    ) -> ConfigFlowResult:
        """Show the presented certificate; ``step`` goes on with ``user_input`` if confirmed."""
        self._resume = (step, user_input)
        return await self.async_step_certificate()

    async def async_step_certificate(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask the user whether the certificate the worker presented is the worker's own."""
        assert self._presented is not None
        if user_input is not None:
            self._pin, self._presented = self._presented["fingerprint"], None
            step, entered = self._resume
            return await step(entered)
        return self.async_show_form(step_id="certificate", description_placeholders=self._presented)

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the worker's URL and token."""
        errors: dict[str, str] = {}
        if user_input is not None:
            info, data, errors = await self._async_try_worker(user_input)
            if self._presented is not None:
                return await self._async_ask_certificate(self.async_step_user, user_input)
            if info is not None:
                await self.async_set_unique_id(info.worker_id, raise_on_progress=False)
                self._abort_if_unique_id_configured(updates=data)
                return self.async_create_entry(title=info.name, data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(_worker_schema(), user_input or {}),
            errors=errors,
        )

    @override
    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The Hydra add-on announced its worker."""
        url = normalise_url(str(discovery_info.config.get(CONF_URL, "")))
        token = discovery_info.config.get(CONF_TOKEN)
        if url is None or not token:
            return self.async_abort(reason="invalid_discovery_info")
        # The add-on announces its certificate through the Supervisor: that is its word for it.
        self._pin = discovery_info.config.get(CONF_FINGERPRINT)
        client = HydraClient(async_get_clientsession(self.hass), url, token, fingerprint=self._pin)
        try:
            info = await client.async_health()
        except HydraError:
            return self.async_abort(reason="cannot_connect")
        await self.async_set_unique_id(info.worker_id)
        # The add-on may have moved or made a new token: keep the existing entry current.
        updates = {CONF_URL: url, CONF_TOKEN: token}
        if self._pin is not None:
            updates[CONF_FINGERPRINT] = self._pin
        self._abort_if_unique_id_configured(updates=updates)
        self._discovery = discovery_info
        self.context["title_placeholders"] = {"name": info.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask the user to confirm the add-on's worker."""
        errors: dict[str, str] = {}
        config = self._discovery.config
        if user_input is not None:
            info, data, errors = await self._async_try_worker(
                {CONF_URL: config[CONF_URL], CONF_TOKEN: config[CONF_TOKEN]}
            )
            if self._presented is not None:
                return await self._async_ask_certificate(self.async_step_hassio_confirm, {})
            if info is not None:
                return self.async_create_entry(title=info.name, data=data)
            errors = {"base": next(iter(errors.values()))}
        return self.async_show_form(
            step_id="hassio_confirm",
            description_placeholders={"addon": self._discovery.name},
            errors=errors,
        )

    async def _async_update_worker(
        self, entry: ConfigEntry, user_input: dict[str, Any]
    ) -> tuple[ConfigFlowResult | None, dict[str, str]]:
        """Check a new URL or token against the entry's own worker: the abort that saves them
        and reloads the entry, or the form errors."""
        info, data, errors = await self._async_try_worker(user_input)
        if info is None:
            return None, errors
        await self.async_set_unique_id(info.worker_id)
        self._abort_if_unique_id_mismatch(reason="wrong_worker")
        return self.async_update_reload_and_abort(entry, data_updates=data), errors

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The worker refused the token, or presented a certificate that is not the pinned one:
        the user is asked for what is wrong (a new certificate needs no new token)."""
        self._pin = entry_data.get(CONF_FINGERPRINT)
        entered = {CONF_TOKEN: entry_data[CONF_TOKEN]}
        await self._async_try_worker({CONF_URL: entry_data[CONF_URL], **entered})
        if self._presented is not None:
            return await self._async_ask_certificate(self.async_step_reauth_confirm, entered)
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the worker's new token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            done, errors = await self._async_update_worker(
                entry, {CONF_URL: entry.data[CONF_URL], CONF_TOKEN: user_input[CONF_TOKEN]}
            )
            if self._presented is not None:
                return await self._async_ask_certificate(self.async_step_reauth_confirm, user_input)
            if done is not None:
                return done
            if CONF_URL in errors:
                errors = {"base": errors[CONF_URL]}
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=probatio.Schema({probatio.Required(CONF_TOKEN): SECRET_SELECTOR}),
            description_placeholders={"name": entry.title, "url": entry.data[CONF_URL]},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the worker's URL or token."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is None:
            self._pin = entry.data.get(CONF_FINGERPRINT)
        else:
            done, errors = await self._async_update_worker(entry, user_input)
            if self._presented is not None:
                return await self._async_ask_certificate(self.async_step_reconfigure, user_input)
            if done is not None:
                return done
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_worker_schema(
                user_input[CONF_URL] if user_input else entry.data[CONF_URL]
            ),
            errors=errors,
        )

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> HydraOptionsFlow:
        return HydraOptionsFlow()


class HydraOptionsFlow(OptionsFlowWithReload):
    """How often to poll the worker; if it has a container engine, which containers to show; if
    it runs a task queue, what the to-do list queues and whom to notify about tasks; and the
    daily routine: who counts as home, bedtime, and the morning briefing. For a cluster's head,
    a second step: its routing rules (kept by the worker, not in the entry's options)."""

    _chosen: dict[str, Any]

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            errors, placeholders = check_routine_options(self.hass, user_input)
            if not errors:
                self._chosen = user_input
                if self._cluster() is not None:
                    return await self.async_step_cluster_routes()
                return self.async_create_entry(data=user_input)
        fields: dict[Any, Any] = {
            probatio.Required(
                CONF_SCAN_INTERVAL, default=DEFAULT_SCAN_INTERVAL.total_seconds()
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=MIN_SCAN_INTERVAL_S,
                    max=MAX_SCAN_INTERVAL_S,
                    step=1,
                    unit_of_measurement="s",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
        }
        if (names := self._container_names()) is not None:
            chosen = self.config_entry.options.get(CONF_CONTAINERS, [])
            fields[probatio.Optional(CONF_CONTAINERS, default=[])] = selector.SelectSelector(
                selector.SelectSelectorConfig(
                    # Patterns saved earlier stay choosable, as do containers now gone.
                    options=sorted({*names, *chosen}),
                    multiple=True,
                    custom_value=True,
                    sort=True,
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            )
            fields[probatio.Required(CONF_REMOVE_AFTER, default=DEFAULT_REMOVE_AFTER_H)] = (
                selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=0,
                        max=MAX_REMOVE_AFTER_H,
                        step=1,
                        unit_of_measurement="h",
                        mode=selector.NumberSelectorMode.BOX,
                    )
                )
            )
        if (kinds := self._task_kinds()) is not None:
            fields.update(self._task_fields(kinds))
        fields.update(routine_fields(self.hass, self.config_entry.options))
        if self._reviews():
            chosen = self.config_entry.options.get(CONF_REVIEW, {}).get(CONF_REVIEW_TARGETS, [])
            fields[probatio.Optional(CONF_REVIEW, default=dict)] = section(
                probatio.Schema(
                    {
                        probatio.Optional(CONF_REVIEW_TARGETS, default=[]): targets_selector(
                            self.hass, chosen
                        )
                    }
                ),
                {"collapsed": True},
            )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema(fields), user_input or self.config_entry.options
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_cluster_routes(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The head's routing rules, one KIND=LABEL line each; saving sends them to the worker,
        whose refusal is shown here."""
        cluster = self._cluster()
        assert cluster is not None
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            try:
                routes = parse_routes(user_input.get(CONF_ROUTES, ""))
            except RouteLineError as err:
                errors[CONF_ROUTES] = "invalid_route_line"
                placeholders["error"] = str(err)
            else:
                # The order counts too: the first rule whose pattern matches a kind is used.
                if list(routes.items()) == list(cluster.data.routes.items()):
                    return self.async_create_entry(data=self._chosen)
                try:
                    answer = await cluster.api.async_set_routes(routes, actor=OPTIONS_ACTOR)
                except HydraError as err:
                    errors[CONF_ROUTES], placeholders["error"] = route_error(err)
                else:
                    cluster.async_set_updated_data(replace(cluster.data, routes=answer.routes))
                    if answer.warnings:
                        return self.async_show_form(
                            step_id="cluster_routes_warning",
                            description_placeholders={"warnings": "\n".join(answer.warnings)},
                        )
                    return self.async_create_entry(data=self._chosen)
        text = (
            user_input.get(CONF_ROUTES, "")
            if user_input is not None
            else routes_text(cluster.data.routes)
        )
        return self.async_show_form(
            step_id="cluster_routes",
            data_schema=probatio.Schema(
                {
                    probatio.Optional(
                        CONF_ROUTES,
                        description={"suggested_value": text},
                    ): selector.TextSelector(selector.TextSelectorConfig(multiline=True))
                }
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_cluster_routes_warning(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The rules were saved; what they cannot do yet was shown."""
        return self.async_create_entry(data=self._chosen)

    def _cluster(self) -> HydraClusterCoordinator | None:
        """The cluster the worker heads, or None (no cluster, a joined node, not loaded)."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return None
        cluster = self.config_entry.runtime_data.part(HydraClusterCoordinator)
        return cluster if cluster is not None and cluster.data.mode == "head" else None

    def _task_fields(self, kinds: tuple[str, ...]) -> dict[Any, Any]:
        """The task queue's options: the to-do list's kind, and notifications about tasks."""
        options = self.config_entry.options
        return {
            probatio.Required(CONF_DEFAULT_KIND, default=DEFAULT_KIND): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=sorted({*kinds, options.get(CONF_DEFAULT_KIND, DEFAULT_KIND)}),
                    custom_value=True,
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            ),
            probatio.Optional(CONF_NOTIFY_TARGETS, default=[]): targets_selector(
                self.hass, options.get(CONF_NOTIFY_TARGETS, [])
            ),
            probatio.Required(CONF_NOTIFY_FAILURE, default=True): selector.BooleanSelector(),
            probatio.Required(CONF_NOTIFY_SUCCESS, default=False): selector.BooleanSelector(),
        }

    def _task_kinds(self) -> tuple[str, ...] | None:
        """The kinds the worker's queue accepts, or None if it runs none (or is not loaded)."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return None
        tasks = self.config_entry.runtime_data.part(HydraTaskCoordinator)
        return None if tasks is None else tasks.data.scheduler.kinds

    def _reviews(self) -> bool:
        """Whether the worker keeps generated images for review (and is loaded)."""
        return (
            self.config_entry.state is ConfigEntryState.LOADED
            and self.config_entry.runtime_data.part(HydraQualityCoordinator) is not None
        )

    def _container_names(self) -> list[str] | None:
        """The worker's containers now, or None if it has no engine (or is not loaded)."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return None
        containers = self.config_entry.runtime_data.part(HydraContainerCoordinator)
        return None if containers is None else list(containers.containers)
