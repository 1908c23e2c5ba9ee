"""The models part's options: which model servers share the GPU, and how room is made."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelsOptions:
    """The VRAM arbiter between Hydra's own models, ComfyUI and local LLM servers."""

    models: bool = option(
        True,
        help="arbitrate the GPU's memory between Hydra's own models, ComfyUI (comfyui_urls) and"
        " the LLM servers below: list, load, unload, lease, and evict idle models when a load"
        " does not fit",
    )
    ollama_urls: tuple[str, ...] = option(
        (),
        help="comma-separated Ollama servers on this GPU (http://host:11434) whose models the"
        " arbiter loads and unloads",
        addon=True,
    )
    llamacpp_urls: tuple[str, ...] = option(
        (),
        help="comma-separated llama.cpp servers in router mode on this GPU (http://host:8080)"
        " whose models the arbiter loads and unloads",
        addon=True,
    )
    llamaswap_urls: tuple[str, ...] = option(
        (),
        help="comma-separated llama-swap proxies on this GPU (http://host:8080) whose models the"
        " arbiter loads (a request through /upstream) and unloads (/api/models/unload, v126 or"
        " later)",
        addon=True,
    )
    vllm_urls: tuple[str, ...] = option(
        (),
        help="comma-separated vLLM servers on this GPU started with --enable-sleep-mode and"
        " VLLM_SERVER_DEV_MODE=1 (http://host:8000): unloading puts one to sleep, loading wakes"
        " it up",
    )
    models_comfyui: bool = option(
        True,
        help="arbitrate the ComfyUI servers of comfyui_urls too (turn off when they run on"
        " another host's GPU)",
    )
    models_gpu: int = option(
        0, help="the index of the GPU the arbiter keeps room on", low=0, high=63
    )
    models_reserve_gb: float = option(
        0.5,
        help="GB kept free beyond what a model is expected to take (CUDA contexts, buffers)",
        low=0,
        high=64,
    )
    models_default_vram_gb: float = option(
        4.0,
        help="GB a model is expected to take when its server gives no size and no load has"
        " measured it yet",
        low=0,
        high=256,
    )
    models_sizes: tuple[str, ...] = option(
        (),
        help="comma-separated ID=GB (* wildcards): the VRAM a model takes, until a load has"
        " measured it (llama.cpp's router and llama-swap give no sizes; Ollama's are file sizes)",
    )
    comfyui_vram_gb: float = option(
        10.0,
        help="GB room is made for before a ComfyUI prompt, until a run has measured it",
        low=0,
        high=256,
    )
    models_ttl: float = option(
        0.0,
        help="seconds an LLM loaded through the arbiter may sit unused before it is unloaded;"
        " 0 keeps it until room is needed",
        low=0,
        high=86400,
    )
    models_pinned: tuple[str, ...] = option(
        (),
        help="comma-separated model ids (* wildcards: ollama/*) never evicted to make room",
    )
    models_priorities: tuple[str, ...] = option(
        (),
        help="comma-separated ID=PRIORITY (0-100, * wildcards): a model is evicted only for a"
        " load of its priority or higher, lower ones first (default 50; Whisper and Kokoro 90)",
    )
    models_free_timeout: float = option(
        30.0,
        help="seconds a load waits for an evicted model's memory to show free on the GPU",
        low=0.1,
        high=600,
    )
    models_load_timeout: float = option(
        600.0, help="seconds a model server may take to load one model", low=1, high=7200
    )
    models_refresh_interval: float = option(
        15.0,
        help="seconds between looks at what each model server holds (loads by others, TTLs)",
        low=1,
        high=3600,
    )
