// The "Hydra" dashboard strategy: `strategy: {type: custom:hydra}` in a dashboard's YAML, or
// "Hydra" in Settings → Dashboards → Add dashboard. It builds its views, with built-in cards only,
// from the entities and devices Hydra has in Home Assistant's registries, on every open: nothing is
// stored, several workers are shown side by side, and a view with nothing to show is left out.
// Served by the integration (dashboard.py); plain JavaScript, no build step.

const PLATFORM = "hydra";

// Which device an entity's translation key makes a GPU, a container or a cluster node.
const GPU_KEY = "utilization";
const CONTAINER_KEY = "container_state";
const NODE_KEY = "node_vram_free";

// The entities of one Hydra worker: on its own device, its GPUs' and its containers'.
class Worker {
  constructor(device) {
    this.device = device;
    this.name = device.name_by_user || device.name || "Hydra";
    this.own = [];
    this.gpus = new Map();
    this.containers = new Map();
    this.nodes = new Map();
  }

  // The worker's own entities with one of the translation keys, in the keys' order.
  keyed(...keys) {
    return keys.flatMap((key) => this.own.filter((entity) => entity.translation_key === key));
  }

  ids(...keys) {
    return this.keyed(...keys).map((entity) => entity.entity_id);
  }
}

// Hydra's workers, each with its entities, from hass.devices, hass.entities and hass.states.
export function findWorkers(hass) {
  const entities = Object.values(hass.entities).filter(
    (entity) => entity.platform === PLATFORM && !entity.hidden && entity.entity_id in hass.states
  );
  const byDevice = new Map();
  for (const entity of entities) {
    if (!entity.device_id) continue;
    if (!byDevice.has(entity.device_id)) byDevice.set(entity.device_id, []);
    byDevice.get(entity.device_id).push(entity);
  }
  const workers = new Map();
  for (const deviceId of byDevice.keys()) {
    const device = hass.devices[deviceId];
    if (device && !device.via_device_id) workers.set(deviceId, new Worker(device));
  }
  for (const [deviceId, owned] of byDevice) {
    const device = hass.devices[deviceId];
    if (!device) continue;
    if (workers.has(deviceId)) {
      workers.get(deviceId).own.push(...owned);
      continue;
    }
    const worker = workers.get(device.via_device_id);
    if (!worker) continue;
    const keys = new Set(owned.map((entity) => entity.translation_key));
    const group = keys.has(GPU_KEY)
      ? worker.gpus
      : keys.has(CONTAINER_KEY)
        ? worker.containers
        : keys.has(NODE_KEY)
          ? worker.nodes
          : null;
    if (group) group.set(deviceId, { name: device.name_by_user || device.name, entities: owned, gpus: [] });
  }
  // A cluster node's GPUs: devices connected through the node's.
  const nodes = new Map([...workers.values()].flatMap((worker) => [...worker.nodes]));
  for (const [deviceId, owned] of byDevice) {
    const device = hass.devices[deviceId];
    const node = device && nodes.get(device.via_device_id);
    if (node && owned.some((entity) => entity.translation_key === GPU_KEY)) {
      node.gpus.push({ name: device.name_by_user || device.name, entities: owned });
    }
  }
  return [...workers.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const byKey = (entities, key) => entities.find((entity) => entity.translation_key === key);
const deviceClass = (hass, entity) => hass.states[entity.entity_id].attributes.device_class;

function gpuEntities(hass, gpu) {
  const temperature = gpu.entities.find(
    (entity) => entity.entity_id.startsWith("sensor.") && deviceClass(hass, entity) === "temperature"
  );
  return {
    utilization: byKey(gpu.entities, "utilization"),
    temperature,
    memory: byKey(gpu.entities, "memory_usage"),
    power: byKey(gpu.entities, "power_draw"),
    profile: byKey(gpu.entities, "power_profile"),
  };
}

const ids = (...entities) => entities.filter(Boolean).map((entity) => entity.entity_id);

// A card of entity rows, or nothing when there are none.
function entitiesCard(title, entityIds, extra = {}) {
  return entityIds.length ? [{ type: "entities", title, entities: entityIds, ...extra }] : [];
}

function gauge(entity, name, max, severity) {
  return entity
    ? [{ type: "gauge", entity: entity.entity_id, name, min: 0, max, needle: true, severity }]
    : [];
}

// A title per worker only when there are several.
const titled = (workers, worker, title) => (workers.length > 1 ? `${worker.name}: ${title}` : title);

function overview(hass, workers) {
  const cards = [];
  const temperatures = [];
  for (const worker of workers) {
    for (const gpu of worker.gpus.values()) {
      const found = gpuEntities(hass, gpu);
      if (found.temperature) temperatures.push(found.temperature.entity_id);
      cards.push({
        type: "vertical-stack",
        cards: [
          {
            type: "grid",
            title: gpu.name,
            columns: 3,
            square: false,
            cards: [
              ...gauge(found.utilization, "Load", 100, { green: 0, yellow: 70, red: 90 }),
              ...gauge(found.temperature, "Temp", 100, { green: 0, yellow: 75, red: 85 }),
              ...gauge(found.memory, "VRAM", 100, { green: 0, yellow: 80, red: 95 }),
            ],
          },
          ...entitiesCard(undefined, ids(found.power, found.profile)),
        ],
      });
    }
    cards.push(
      ...entitiesCard(titled(workers, worker, "Queue"), [
        ...worker.ids("tasks_running", "tasks_queued", "tasks_waiting", "autonomous_work"),
      ])
    );
  }
  if (temperatures.length && hass.config.components.includes("history")) {
    const utilization = workers.flatMap((worker) =>
      [...worker.gpus.values()].flatMap((gpu) => ids(byKey(gpu.entities, GPU_KEY)))
    );
    cards.push({ type: "history-graph", title: "GPU temperature", hours_to_show: 24, entities: temperatures });
    cards.push({ type: "history-graph", title: "GPU load", hours_to_show: 24, entities: utilization });
  }
  const problems = workers.flatMap((worker) => [
    ...[...worker.containers.values()].flatMap((container) =>
      container.entities
        .filter((entity) => entity.entity_id.startsWith("binary_sensor."))
        .map((entity) => entity.entity_id)
    ),
  ]);
  if (problems.length) {
    cards.push({
      type: "entity-filter",
      entities: problems,
      conditions: [{ condition: "state", state: "on" }],
      show_empty: false,
      card: { type: "entities", title: "Alerts" },
    });
  }
  cards.push({
    type: "button",
    name: "Repairs",
    icon: "mdi:tools",
    icon_height: "40px",
    tap_action: { action: "navigate", navigation_path: "/config/repairs" },
  });
  const overnight = workers.flatMap((worker) =>
    worker.ids(
      "tasks_succeeded_today",
      "tasks_failed_today",
      "findings_today",
      "last_ingestion",
      "chapter_progress",
      "assets_awaiting_review"
    )
  );
  cards.push(...entitiesCard("Overnight", overnight));
  if (overnight.length && hass.config.components.includes("logbook")) {
    cards.push({ type: "logbook", title: "What ran", hours_to_show: 24, target: { entity_id: overnight } });
  }
  return cards;
}

function containers(hass, workers) {
  return workers.flatMap((worker) => [
    ...entitiesCard(titled(workers, worker, "Container engine"), worker.ids("container_engine", "self_healing")),
    ...[...worker.containers.values()].map((container) => ({
      type: "entities",
      title: container.name,
      state_color: true,
      entities: container.entities
        .filter((entity) => !entity.entity_category || entity.translation_key)
        .map((entity) => entity.entity_id),
    })),
  ]);
}

function queue(hass, workers) {
  return workers.flatMap((worker) => [
    ...worker.ids("queue").map((entity) => ({ type: "todo-list", entity, title: titled(workers, worker, "Queue") })),
    ...entitiesCard(
      titled(workers, worker, "Running and waiting"),
      worker.ids("tasks_running", "tasks_queued", "tasks_waiting", "tasks_succeeded_today", "tasks_failed_today")
    ),
    ...entitiesCard(
      titled(workers, worker, "Resource gate"),
      worker.ids("autonomous_work", "max_concurrent", "max_gpu_utilization", "min_free_vram", "poll_interval")
    ),
  ]);
}

// The voice settings of each worker, then the last turns: Home Assistant keeps each assistant's
// recent runs (what was heard, the intent, the answer, each stage's timing) on its Debug page.
function voice(hass, workers, { assistants }) {
  const settings = workers.flatMap((worker) =>
    entitiesCard(
      titled(workers, worker, "Voice"),
      worker.ids("stt_model", "tts_voice", "wake_threshold", "wake_verify", "wake_verify_threshold")
    )
  );
  if (!settings.length || !assistants.length) return settings;
  const turns = assistants.map((assistant) => ({
    type: "button",
    name: assistant.name,
    icon: "mdi:account-voice",
    action_name: "Last turns",
    tap_action: { action: "navigate", navigation_path: `/config/voice-assistants/debug/${assistant.id}` },
  }));
  return [...settings, { type: "entities", title: "Recent voice turns", entities: turns }];
}

// The Assist pipelines, the preferred one first: only administrators may list them and open
// their Debug page; without the assist_pipeline integration there are none.
async function assistants(hass) {
  if (!hass.user?.is_admin || !hass.config.components.includes("assist_pipeline")) return [];
  try {
    const listed = await hass.callWS({ type: "assist_pipeline/pipeline/list" });
    const preferred = (pipeline) => (pipeline.id === listed.preferred_pipeline ? 0 : 1);
    return [...listed.pipelines]
      .sort((a, b) => preferred(a) - preferred(b))
      .map((pipeline) => ({ id: pipeline.id, name: pipeline.name }));
  } catch (err) {
    console.warn("Hydra dashboard: the voice assistants could not be listed", err);
    return [];
  }
}

const press = (entity) => ({
  type: "button",
  entity,
  show_state: false,
  tap_action: { action: "perform-action", perform_action: "button.press", target: { entity_id: entity } },
});

function review(hass, workers) {
  return workers.flatMap((worker) => {
    const [image] = worker.ids("asset_awaiting_review");
    if (!image) return [];
    return [
      {
        type: "vertical-stack",
        cards: [
          { type: "picture-entity", entity: image, name: titled(workers, worker, "Awaiting review"), show_state: false },
          { type: "horizontal-stack", cards: worker.ids("accept_asset", "reject_asset").map(press) },
          ...entitiesCard(undefined, worker.ids("assets_awaiting_review")),
        ],
      },
    ];
  });
}

const attribute = (entity, name, label) => ({ type: "attribute", entity, attribute: name, name: label });

// Per chapter: how far it is, and where (its state and stage, images and voice lines done).
function creative(hass, workers) {
  return workers.flatMap((worker) =>
    worker.ids("chapter_progress").map((entity) => ({
      type: "vertical-stack",
      cards: [
        { type: "gauge", entity, min: 0, max: 100 },
        {
          type: "entities",
          entities: [
            attribute(entity, "state", "State"),
            attribute(entity, "stage", "Stage"),
            attribute(entity, "images_done", "Images done"),
            attribute(entity, "voices_done", "Voice lines done"),
            attribute(entity, "pending_review", "Waiting for review"),
          ],
        },
      ],
    }))
  );
}

// Each worker's knowledge base, then a way to search it: Assist, where Hydra's sentences
// ("what do we know about …", "what do you remember about …") answer with a source.
function knowledge(hass, workers) {
  const cards = workers.flatMap((worker) => {
    const [chunks] = worker.ids("knowledge_chunks");
    return [
      ...entitiesCard(
        titled(workers, worker, "Knowledge"),
        worker.ids("knowledge_documents", "knowledge_chunks", "findings_today", "last_ingestion")
      ),
      ...entitiesCard(
        titled(workers, worker, "Feeds and memories"),
        chunks
          ? [
              attribute(chunks, "feeds", "Feeds followed"),
              attribute(chunks, "memories", "Memories kept"),
            ]
          : []
      ),
    ];
  });
  if (!cards.length || !hass.config.components.includes("conversation")) return cards;
  const ask = {
    type: "button",
    name: "Ask “what do we know about …”",
    icon: "mdi:text-search",
    action_name: "Search",
    tap_action: { action: "assist", start_listening: false },
  };
  return [...cards, { type: "entities", title: "Search the knowledge base", entities: [ask] }];
}

function models(hass, workers) {
  return workers.flatMap((worker) => {
    const vram = worker.ids("model_vram");
    return [
      ...entitiesCard(titled(workers, worker, "Model servers"), worker.ids("active_llm")),
      ...entitiesCard(titled(workers, worker, "Models in VRAM"), vram),
      ...(vram.length && hass.config.components.includes("history")
        ? [{ type: "history-graph", title: titled(workers, worker, "VRAM by model"), hours_to_show: 24, entities: vram }]
        : []),
      ...entitiesCard(titled(workers, worker, "Unload"), worker.ids("unload_model")),
    ];
  });
}

// A head worker's cluster: how many nodes are alive, then each node (a device under the worker)
// with its connectivity, VRAM and latency, and its GPUs' load, temperature, memory and power.
function cluster(hass, workers) {
  return workers.flatMap((worker) => [
    ...entitiesCard(titled(workers, worker, "Cluster"), worker.ids("cluster_nodes")),
    ...[...worker.nodes.values()].flatMap((node) => [
      ...entitiesCard(
        node.name,
        node.entities.map((entity) => entity.entity_id)
      ),
      ...node.gpus.flatMap((gpu) => {
        const { utilization, temperature, memory, power } = gpuEntities(hass, gpu);
        return entitiesCard(gpu.name, ids(utilization, temperature, memory, power));
      }),
    ]),
  ]);
}

const VIEWS = [
  ["Overview", "overview", "mdi:view-dashboard", overview],
  ["Containers", "containers", "mdi:docker", containers],
  ["Queue", "queue", "mdi:format-list-checks", queue],
  ["Voice", "voice", "mdi:microphone", voice],
  ["Review", "review", "mdi:image-check", review],
  ["Creative", "creative", "mdi:book-open-page-variant", creative],
  ["Knowledge", "knowledge", "mdi:brain", knowledge],
  ["Models", "models", "mdi:memory", models],
  ["Cluster", "cluster", "mdi:server-network", cluster],
];

// The dashboard: one view per part that has something to show. ``extras`` holds what the
// frontend had to be asked for (the voice assistants).
export function hydraDashboard(hass, extras = { assistants: [] }) {
  const workers = findWorkers(hass);
  if (!workers.length) {
    return {
      title: "Hydra",
      views: [
        {
          title: "Hydra",
          path: "overview",
          cards: [{ type: "markdown", content: "No Hydra worker is set up yet: add one under Settings → Devices & services." }],
        },
      ],
    };
  }
  const views = VIEWS.map(([title, path, icon, build]) => ({ title, path, icon, cards: build(hass, workers, extras) }));
  // The overview is always there (a worker is); any other view only with something to show.
  return { title: "Hydra", views: views.filter((view) => view.path === "overview" || view.cards.length) };
}

// What the strategy's ``generate`` returns: the dashboard, once the frontend has been asked
// for what ``hass`` does not hold.
export async function generateDashboard(hass) {
  return hydraDashboard(hass, { assistants: await assistants(hass) });
}

class HydraDashboardStrategy extends HTMLElement {
  static async generate(_config, hass) {
    return generateDashboard(hass);
  }
}

const TAG = "ll-strategy-dashboard-hydra";

function register() {
  const registry = window.customElements;
  if (!registry.get(TAG)) registry.define(TAG, HydraDashboardStrategy);
  return registry;
}

if (!window.customElements.get(TAG)) {
  let registry = register();
  // Home Assistant's frontend installs its own element registry (a scoped-registry polyfill) as
  // its core loads, and this script, loaded beside it, can run first: an element defined in the
  // browser's registry before the swap is unknown to the frontend, and the dashboard would wait
  // for it in vain ("Timeout waiting for strategy element"). Define it again in the frontend's
  // registry once it appears; stop when the frontend's app is defined there (or after a minute).
  const since = Date.now();
  const watch = setInterval(() => {
    if (window.customElements !== registry) registry = register();
    if (registry.get("home-assistant") || Date.now() - since > 60_000) clearInterval(watch);
  }, 50);
  window.customStrategies = window.customStrategies || [];
  window.customStrategies.push({
    type: "hydra",
    strategyType: "dashboard",
    name: "Hydra",
    description: "GPUs, containers, queue, voice, review and the rest of Hydra, built from your workers.",
    documentationURL: "https://github.com/hydra-homelab/hydra/blob/main/docs/dashboard.md",
  });
}
