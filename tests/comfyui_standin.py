"""A ComfyUI stand-in for tests: ComfyUI's HTTP and WebSocket API on 127.0.0.1, images by Pillow.

Checked against ComfyUI commit 5e3f15a830ff27d3563ef4b43e9f6a0321ea36cd (2026-04-24, version
0.19.3): ``nodes.py``, ``server.py``, ``execution.py``, ``main.py``, ``comfy/samplers.py``,
``comfy_execution/graph.py``, ``comfy_execution/validation.py``, ``comfy_execution/progress.py``
and ``folder_paths.py``.

ComfyUI cannot be installed here (it is not on PyPI and needs model weights), so this server
answers what ComfyUI's ``server.py`` answers, with the same shapes, taken from its source:

- ``GET /object_info`` (and ``/object_info/{node_class}``) is ``server.node_info`` of ten nodes of
  ``nodes.py`` (``_NODES``: their ``INPUT_TYPES``, ``RETURN_TYPES``, ``OUTPUT_NODE`` and the
  rest, tooltips included); the checkpoint list is the stand-in's ``checkpoints``, ``LoadImage``'s
  list the image files uploaded to the input folder's top level;
- ``POST /prompt`` validates the graph as ``execution.validate_prompt`` does (only what feeds an
  output node, links typed as ``validate_node_input`` types them, values converted, ranges and
  lists checked, ``LoadImage``'s ``VALIDATE_INPUTS``), refuses with ComfyUI's
  ``{"error": {...}, "node_errors": {...}}`` and HTTP 400, and queues a graph of which at least
  one output is valid, answering ``{"prompt_id", "number", "node_errors"}``;
- a prompt runs as ``main.prompt_worker`` runs it: ``status`` to everyone as it leaves the queue;
  to the submitting ``client_id``: ``execution_start``, ``execution_cached``, then per node, in
  the order of ``ExecutionList.ux_friendly_pick_node``, ``progress_state``, ``executing``
  (``progress_state`` and ``progress`` per sampler step), ``executed`` for output nodes and
  ``progress_state``; then ``execution_success`` (or ``execution_error``, or
  ``execution_interrupted``), the ``/history`` entry, ``status`` to everyone, and last
  ``executing`` with ``node: null``;
- ``/history`` (``max_items``, ``offset``; ``POST`` clears or deletes), ``/view``,
  ``/upload/image`` (``type``, ``subfolder``, ``overwrite``, a same-content file kept under its
  name), ``/interrupt``, ``/queue``, ``/free``, ``/features``, ``/system_stats`` and
  ``/ws?clientId=`` (which, like ComfyUI, re-sends the running node to a client that reconnects,
  and answers a first ``feature_flags`` message with the server's).

What differs: no model runs. ``SaveImage`` writes one PNG per image of the batch, drawn from the
seed, prompt, model, size and batch index (same inputs, same bytes), and nothing is cached
between prompts (``execution_cached`` always lists no nodes). Tests steer it: ``fail_node_type``
fails the next prompt at that node type, ``stall`` holds prompts at the sampler until
interrupted, ``drop_websockets_after`` closes the sockets after that many progress messages
(``refuse_websockets`` keeps them shut), and ``stats_held`` (an event) keeps ``/system_stats``
from answering until it is set, as a server busy starting up. ``submissions`` counts each
prompt posted, by content; ``calls`` counts each route.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
import contextlib
import copy
import hashlib
import heapq
import io
import json
import mimetypes
import posixpath
import random
import sys
import time
import traceback
from typing import Any, Self
import uuid

from aiohttp import ClientError, WSMsgType, web
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

UPSTREAM_COMMIT = "5e3f15a830ff27d3563ef4b43e9f6a0321ea36cd"
COMFYUI_VERSION = "0.19.3"
MAX_RESOLUTION = 16384
# comfy/samplers.py: SAMPLER_NAMES (KSAMPLER_NAMES + ddim, uni_pc, uni_pc_bh2) and SCHEDULER_NAMES
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "exp_heun_2_x0", "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast",
    "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde",
    "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
    "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece",
    "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal",
]  # fmt: skip
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]
_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
_SAVE_DESCRIPTION = "Saves the input images to your ComfyUI output directory."

# The nodes as nodes.py declares them (class attributes by their names; DISPLAY_NAME is the
# node's NODE_DISPLAY_NAME_MAPPINGS entry), with "CHECKPOINTS" / "INPUT_FILES" standing for the
# lists ComfyUI reads from its folders. PreviewImage inherits from SaveImage.
# fmt: off
_NODES: dict[str, dict[str, Any]] = {
    "CheckpointLoaderSimple": {
        "INPUT_TYPES": {
            "required": {
                "ckpt_name": [
                    "CHECKPOINTS",
                    {"tooltip": "The name of the checkpoint (model) to load."},
                ],
            }
        },
        "RETURN_TYPES": ["MODEL", "CLIP", "VAE"],
        "OUTPUT_TOOLTIPS": [
            "The model used for denoising latents.",
            "The CLIP model used for encoding text prompts.",
            "The VAE model used for encoding and decoding images to and from latent space.",
        ],
        "FUNCTION": "load_checkpoint",
        "CATEGORY": "loaders",
        "DESCRIPTION": (
            "Loads a diffusion model checkpoint, diffusion models are used to denoise latents."
        ),
        "SEARCH_ALIASES": [
            "load model", "checkpoint", "model loader", "load checkpoint", "ckpt", "model",
        ],
        "DISPLAY_NAME": "Load Checkpoint",
    },
    "CLIPTextEncode": {
        "INPUT_TYPES": {
            "required": {
                "text": [
                    "STRING",
                    {
                        "multiline": True,
                        "dynamicPrompts": True,
                        "tooltip": "The text to be encoded.",
                    },
                ],
                "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
            }
        },
        "RETURN_TYPES": ["CONDITIONING"],
        "OUTPUT_TOOLTIPS": [
            "A conditioning containing the embedded text used to guide the diffusion model."
        ],
        "FUNCTION": "encode",
        "CATEGORY": "conditioning",
        "DESCRIPTION": (
            "Encodes a text prompt using a CLIP model into an embedding that can be used to guide"
            " the diffusion model towards generating specific images."
        ),
        "SEARCH_ALIASES": [
            "text", "prompt", "text prompt", "positive prompt", "negative prompt", "encode text",
            "text encoder", "encode prompt",
        ],
        "DISPLAY_NAME": "CLIP Text Encode (Prompt)",
    },
    "EmptyLatentImage": {
        "INPUT_TYPES": {
            "required": {
                "width": [
                    "INT",
                    {
                        "default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                        "tooltip": "The width of the latent images in pixels.",
                    },
                ],
                "height": [
                    "INT",
                    {
                        "default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                        "tooltip": "The height of the latent images in pixels.",
                    },
                ],
                "batch_size": [
                    "INT",
                    {
                        "default": 1, "min": 1, "max": 4096,
                        "tooltip": "The number of latent images in the batch.",
                    },
                ],
            }
        },
        "RETURN_TYPES": ["LATENT"],
        "OUTPUT_TOOLTIPS": ["The empty latent image batch."],
        "FUNCTION": "generate",
        "CATEGORY": "latent",
        "DESCRIPTION": "Create a new batch of empty latent images to be denoised via sampling.",
        "SEARCH_ALIASES": [
            "empty", "empty latent", "new latent", "create latent", "blank latent", "blank",
        ],
        "DISPLAY_NAME": "Empty Latent Image",
    },
    "KSampler": {
        "INPUT_TYPES": {
            "required": {
                "model": ["MODEL", {"tooltip": "The model used for denoising the input latent."}],
                "seed": [
                    "INT",
                    {
                        "default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                        "control_after_generate": True,
                        "tooltip": "The random seed used for creating the noise.",
                    },
                ],
                "steps": [
                    "INT",
                    {
                        "default": 20, "min": 1, "max": 10000,
                        "tooltip": "The number of steps used in the denoising process.",
                    },
                ],
                "cfg": [
                    "FLOAT",
                    {
                        "default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                        "tooltip": (
                            "The Classifier-Free Guidance scale balances creativity and adherence"
                            " to the prompt. Higher values result in images more closely matching"
                            " the prompt however too high values will negatively impact quality."
                        ),
                    },
                ],
                "sampler_name": [
                    SAMPLERS,
                    {
                        "tooltip": (
                            "The algorithm used when sampling, this can affect the quality, speed,"
                            " and style of the generated output."
                        )
                    },
                ],
                "scheduler": [
                    SCHEDULERS,
                    {
                        "tooltip": (
                            "The scheduler controls how noise is gradually removed to form the"
                            " image."
                        )
                    },
                ],
                "positive": [
                    "CONDITIONING",
                    {
                        "tooltip": (
                            "The conditioning describing the attributes you want to include in"
                            " the image."
                        )
                    },
                ],
                "negative": [
                    "CONDITIONING",
                    {
                        "tooltip": (
                            "The conditioning describing the attributes you want to exclude from"
                            " the image."
                        )
                    },
                ],
                "latent_image": ["LATENT", {"tooltip": "The latent image to denoise."}],
                "denoise": [
                    "FLOAT",
                    {
                        "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                        "tooltip": (
                            "The amount of denoising applied, lower values will maintain the"
                            " structure of the initial image allowing for image to image"
                            " sampling."
                        ),
                    },
                ],
            }
        },
        "RETURN_TYPES": ["LATENT"],
        "OUTPUT_TOOLTIPS": ["The denoised latent."],
        "FUNCTION": "sample",
        "CATEGORY": "sampling",
        "DESCRIPTION": (
            "Uses the provided model, positive and negative conditioning to denoise the latent"
            " image."
        ),
        "SEARCH_ALIASES": [
            "sampler", "sample", "generate", "denoise", "diffuse", "txt2img", "img2img",
        ],
        "DISPLAY_NAME": "KSampler",
    },
    "VAEDecode": {
        "INPUT_TYPES": {
            "required": {
                "samples": ["LATENT", {"tooltip": "The latent to be decoded."}],
                "vae": ["VAE", {"tooltip": "The VAE model used for decoding the latent."}],
            }
        },
        "RETURN_TYPES": ["IMAGE"],
        "OUTPUT_TOOLTIPS": ["The decoded image."],
        "FUNCTION": "decode",
        "CATEGORY": "latent",
        "DESCRIPTION": "Decodes latent images back into pixel space images.",
        "SEARCH_ALIASES": ["decode", "decode latent", "latent to image", "render latent"],
        "DISPLAY_NAME": "VAE Decode",
    },
    "VAEEncode": {
        "INPUT_TYPES": {"required": {"pixels": ["IMAGE"], "vae": ["VAE"]}},
        "RETURN_TYPES": ["LATENT"],
        "FUNCTION": "encode",
        "CATEGORY": "latent",
        "SEARCH_ALIASES": ["encode", "encode image", "image to latent"],
        "DISPLAY_NAME": "VAE Encode",
    },
    "LoadImage": {
        "INPUT_TYPES": {"required": {"image": ["INPUT_FILES", {"image_upload": True}]}},
        "RETURN_TYPES": ["IMAGE", "MASK"],
        "FUNCTION": "load_image",
        "CATEGORY": "image",
        "ESSENTIALS_CATEGORY": "Basics",
        "SEARCH_ALIASES": [
            "load image", "open image", "import image", "image input", "upload image",
            "read image", "image loader",
        ],
        "DISPLAY_NAME": "Load Image",
    },
    "ImageScale": {
        "INPUT_TYPES": {
            "required": {
                "image": ["IMAGE"],
                "upscale_method": [UPSCALE_METHODS],
                "width": ["INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}],
                "height": ["INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}],
                "crop": [CROP_METHODS],
            }
        },
        "RETURN_TYPES": ["IMAGE"],
        "FUNCTION": "upscale",
        "CATEGORY": "image/upscaling",
        "ESSENTIALS_CATEGORY": "Image Tools",
        "SEARCH_ALIASES": [
            "resize", "resize image", "scale image", "image resize", "zoom", "zoom in",
            "change size",
        ],
        "DISPLAY_NAME": "Upscale Image",
    },
    "SaveImage": {
        "INPUT_TYPES": {
            "required": {
                "images": ["IMAGE", {"tooltip": "The images to save."}],
                "filename_prefix": [
                    "STRING",
                    {
                        "default": "ComfyUI",
                        "tooltip": (
                            "The prefix for the file to save. This may include formatting"
                            " information such as %date:yyyy-MM-dd% or %Empty Latent Image.width%"
                            " to include values from nodes."
                        ),
                    },
                ],
            },
            "hidden": _HIDDEN,
        },
        "RETURN_TYPES": [],
        "FUNCTION": "save_images",
        "OUTPUT_NODE": True,
        "CATEGORY": "image",
        "ESSENTIALS_CATEGORY": "Basics",
        "DESCRIPTION": _SAVE_DESCRIPTION,
        "SEARCH_ALIASES": [
            "save", "save image", "export image", "output image", "write image", "download",
        ],
        "DISPLAY_NAME": "Save Image",
    },
    "PreviewImage": {
        "INPUT_TYPES": {"required": {"images": ["IMAGE"]}, "hidden": _HIDDEN},
        "RETURN_TYPES": [],
        "FUNCTION": "save_images",
        "OUTPUT_NODE": True,
        "CATEGORY": "image",
        "ESSENTIALS_CATEGORY": "Basics",
        "DESCRIPTION": _SAVE_DESCRIPTION,
        "SEARCH_ALIASES": [
            "preview", "preview image", "show image", "view image", "display image",
            "image viewer",
        ],
        "DISPLAY_NAME": "Preview Image",
    },
}
# fmt: on

# SaveImage / PreviewImage: (folder, text added to the prefix, PNG compress level)
_SAVERS = {"SaveImage": ("output", False, 4), "PreviewImage": ("temp", True, 1)}
# comfy_api/feature_flags.py SERVER_FEATURE_FLAGS, with ComfyUI's default arguments
_FEATURES = {
    "supports_preview_metadata": True,
    "max_upload_size": 100 * 1024 * 1024,
    "extension": {"manager": {"supports_v4": True}},
    "node_replacements": True,
    "assets": False,
}
# execution.SENSITIVE_EXTRA_DATA_KEYS: kept out of the queue and the history
_SENSITIVE = ("auth_token_comfy_org", "api_key_comfy_org")
_ANY, _MATCH_TYPE = "*", "COMFY_MATCHTYPE_V3"


def object_info(checkpoints: list[str], input_files: list[str]) -> dict[str, Any]:
    """``GET /object_info`` as ComfyUI builds it in ``server.node_info``."""
    return {name: node_info(name, checkpoints, input_files) for name in _NODES}


def node_info(name: str, checkpoints: list[str], input_files: list[str]) -> dict[str, Any]:
    """One node's entry, key for key as ``server.node_info`` makes it for a ``nodes.py`` node."""
    node = _NODES[name]
    folders = {"CHECKPOINTS": sorted(checkpoints), "INPUT_FILES": sorted(input_files)}
    inputs = copy.deepcopy(node["INPUT_TYPES"])
    for section in ("required", "optional"):
        for spec in inputs.get(section, {}).values():
            if isinstance(spec[0], str):
                spec[0] = folders.get(spec[0], spec[0])
    info: dict[str, Any] = {
        "input": inputs,
        "input_order": {key: list(value) for key, value in inputs.items()},
        "is_input_list": node.get("INPUT_IS_LIST", False),
        "output": list(node["RETURN_TYPES"]),
        "output_is_list": node.get("OUTPUT_IS_LIST", [False] * len(node["RETURN_TYPES"])),
        "output_name": list(node.get("RETURN_NAMES", node["RETURN_TYPES"])),
        "name": name,
        "display_name": node.get("DISPLAY_NAME", name),
        "description": node.get("DESCRIPTION", ""),
        "python_module": "nodes",
        "category": node.get("CATEGORY", "sd"),
        "output_node": node.get("OUTPUT_NODE", False) is True,
        "has_intermediate_output": False,
    }
    if "OUTPUT_TOOLTIPS" in node:
        info["output_tooltips"] = list(node["OUTPUT_TOOLTIPS"])
    info["search_aliases"] = list(node.get("SEARCH_ALIASES", []))
    if "ESSENTIALS_CATEGORY" in node:
        info["essentials_category"] = node["ESSENTIALS_CATEGORY"]
    return info


# --- validation (execution.validate_prompt / validate_inputs) ------------------------------------


def _error(kind: str, message: str, details: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": dict(extra)}


def _full_type_name(kind: type) -> str:
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def validate_node_input(received_type: Any, input_type: Any, strict: bool = False) -> bool:
    """``comfy_execution.validation.validate_node_input``: may this output feed that input?"""
    if received_type == input_type:
        return True
    if _ANY in (received_type, input_type) or _MATCH_TYPE in (received_type, input_type):
        return True
    if isinstance(received_type, list) and input_type == "COMBO":
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {kind.strip() for kind in received_type.split(",")}
    accepted = {kind.strip() for kind in input_type.split(",")}
    if _ANY in received or _ANY in accepted:
        return True
    return received <= accepted if strict else bool(received & accepted)


def _annotated(name: str) -> tuple[str, str | None]:
    """``folder_paths.annotated_filepath``: ``"x.png [output]"`` names a file of that folder."""
    for folder in ("output", "input", "temp"):
        if name.endswith(f"[{folder}]"):
            return name[: -len(folder) - 3], folder
    return name, None


def _validate_load_image(files: Mapping[str, Mapping[str, bytes]], image: Any) -> bool | str:
    """``LoadImage.VALIDATE_INPUTS``: the file must exist (in any subfolder of the folder)."""
    name, folder = _annotated(image)
    if posixpath.normpath(name) not in files[folder or "input"]:
        return f"Invalid image file: {image}"
    return True


# class type: (VALIDATE_INPUTS, the inputs it takes, which skip the range and list checks)
_CUSTOM_VALIDATION = {"LoadImage": (_validate_load_image, ("image",))}


def _input_info(inputs: Mapping[str, Any], name: str) -> tuple[Any, str | None, dict[str, Any]]:
    for category in ("required", "optional", "hidden"):
        if name in inputs.get(category, {}):
            spec = inputs[category][name]
            return spec[0], category, spec[1] if len(spec) > 1 else {}
    return None, None, {}


def validate_inputs(  # noqa: PLR0912 - one branch per check, as ComfyUI's
    prompt: dict[str, Any],
    unique_id: Any,
    validated: dict[Any, tuple[bool, list[dict[str, Any]], Any]],
    info: Mapping[str, Any],
    files: Mapping[str, Mapping[str, bytes]],
    visiting: list[Any] | None = None,
) -> tuple[bool, list[dict[str, Any]], Any]:
    """``execution.validate_inputs``: (valid, errors, node id) of one node and, first, what
    feeds it; converts the prompt's values in place as ComfyUI does."""
    visiting = [] if visiting is None else visiting
    if unique_id in validated:
        return validated[unique_id]
    if unique_id in visiting:
        path_nodes = [*visiting[visiting.index(unique_id) :], unique_id]
        cycle_nodes = list(dict.fromkeys(path_nodes))
        path = " -> ".join(f"{node} ({prompt[node]['class_type']})" for node in path_nodes)
        for node in cycle_nodes:
            extra = {"node_id": node, "cycle_nodes": cycle_nodes}
            cycle = _error("dependency_cycle", "Dependency cycle detected", path, extra)
            validated[node] = (False, [cycle], node)
        return validated[unique_id]

    inputs = prompt[unique_id]["inputs"]
    class_type = prompt[unique_id]["class_type"]
    class_inputs = info[class_type]["input"]
    custom, custom_inputs = _CUSTOM_VALIDATION.get(class_type, (None, ()))
    errors: list[dict[str, Any]] = []
    valid = True
    names = [*class_inputs.get("required", {}), *class_inputs.get("optional", {})]
    for name in names:
        input_type, category, extra_info = _input_info(class_inputs, name)
        if name not in inputs:
            if category == "required":
                extra = {"input_name": name}
                errors.append(
                    _error("required_input_missing", "Required input is missing", name, extra)
                )
            continue
        value = inputs[name]
        config = [input_type, extra_info]
        if isinstance(value, list):
            if len(value) != 2:
                message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
                extra = {"input_name": name, "input_config": config, "received_value": value}
                errors.append(_error("bad_linked_input", message, name, extra))
                continue
            source = value[0]
            received_type = tuple(info[prompt[source]["class_type"]]["output"])[value[1]]
            if not validate_node_input(received_type, input_type):
                details = (
                    f"{name}, received_type({received_type}) mismatch input_type({input_type})"
                )
                extra = {
                    "input_name": name,
                    "input_config": config,
                    "received_type": received_type,
                    "linked_node": value,
                }
                message = "Return type mismatch between linked nodes"
                errors.append(_error("return_type_mismatch", message, details, extra))
                continue
            try:
                visiting.append(unique_id)
                try:
                    result = validate_inputs(prompt, source, validated, info, files, visiting)
                finally:
                    visiting.pop()
                if result[0] is False:
                    valid = False
                    continue
            except Exception as err:
                valid = False
                extra = {
                    "input_name": name,
                    "input_config": config,
                    "exception_message": str(err),
                    "exception_type": _full_type_name(type(err)),
                    "traceback": traceback.format_tb(err.__traceback__),
                    "linked_node": value,
                }
                message = "Exception when validating inner node"
                inner = _error("exception_during_inner_validation", message, str(err), extra)
                validated[source] = (False, [inner], source)
                continue
        else:
            try:
                if isinstance(value, dict) and "__value__" in value:
                    value = inputs[name] = value["__value__"]
                converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
                    input_type if isinstance(input_type, str) else ""
                )
                if converter is not None:
                    value = inputs[name] = converter(value)
            except Exception as err:
                extra = {
                    "input_name": name,
                    "input_config": config,
                    "received_value": value,
                    "exception_message": str(err),
                }
                message = f"Failed to convert an input value to a {input_type} value"
                details = f"{name}, {value}, {err}"
                errors.append(_error("invalid_input_type", message, details, extra))
                continue
            if name not in custom_inputs:
                error = _value_error(name, value, input_type, extra_info, config)
                if error is not None:
                    errors.append(error)
                    continue

    if custom is not None:
        # a linked input is not known yet: ComfyUI passes None
        given = {
            name: None if isinstance(inputs[name], list) else inputs[name]
            for name in custom_inputs
            if name in inputs
        }
        verdict = custom(files, **given)
        if verdict is not True:
            for name in given:
                details = name if verdict is False else f"{name} - {verdict}"
                message = "Custom validation failed for node"
                extra = {"input_name": name}
                errors.append(_error("custom_validation_failed", message, details, extra))

    before = validated.get(unique_id, (True, [], unique_id))
    outcome = (
        before[0] and valid and not errors,
        before[1] + [error for error in errors if error not in before[1]],
        unique_id,
    )
    validated[unique_id] = outcome
    return outcome


def _value_error(
    name: str, value: Any, input_type: Any, extra_info: Mapping[str, Any], config: list[Any]
) -> dict[str, Any] | None:
    extra = {"input_name": name, "input_config": config, "received_value": value}
    if "min" in extra_info and value < extra_info["min"]:
        message = f"Value {value} smaller than min of {extra_info['min']}"
        return _error("value_smaller_than_min", message, name, extra)
    if "max" in extra_info and value > extra_info["max"]:
        message = f"Value {value} bigger than max of {extra_info['max']}"
        return _error("value_bigger_than_max", message, name, extra)
    if isinstance(input_type, list) or input_type == "COMBO":
        options = extra_info.get("options", []) if input_type == "COMBO" else input_type
        if value not in options:
            listed = str(options)
            if len(options) > 20:  # ComfyUI does not send long lists (model files) back
                listed, extra["input_config"] = f"(list of length {len(options)})", None
            details = f"{name}: '{value}' not in {listed}"
            return _error("value_not_in_list", "Value not in list", details, extra)
    return None


def validate_prompt(
    prompt: Any,
    info: Mapping[str, Any],
    files: Mapping[str, Mapping[str, bytes]],
    partial_execution_list: list[str] | None = None,
) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
    """``execution.validate_prompt``: (valid, error, the outputs to run, node_errors)."""
    outputs: list[str] = []
    for node_id in prompt:
        node = prompt[node_id]
        if "class_type" not in node:
            title = node.get("_meta", {}).get("title")
            shown = title or f"ID #{node_id}"
            message = (
                f"Node '{shown}' has no class_type. "
                "The workflow may be corrupted or a custom node is missing."
            )
            extra = {"node_id": node_id, "class_type": None, "node_title": title}
            error = _error("missing_node_type", message, f"Node ID '#{node_id}'", extra)
            return False, error, [], {}
        class_type = node["class_type"]
        if class_type not in info:
            title = node.get("_meta", {}).get("title", class_type)
            message = f"Node '{title}' not found. The custom node may not be installed."
            extra = {"node_id": node_id, "class_type": class_type, "node_title": title}
            error = _error("missing_node_type", message, f"Node ID '#{node_id}'", extra)
            return False, error, [], {}
        if info[class_type]["output_node"] and (
            partial_execution_list is None or node_id in partial_execution_list
        ):
            outputs.append(node_id)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs", "", {}), [], {}

    good_outputs: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    validated: dict[Any, tuple[bool, list[dict[str, Any]], Any]] = {}
    for output in outputs:
        try:
            valid, reasons, _ = validate_inputs(prompt, output, validated, info, files)
        except Exception as err:
            valid = False
            extra = {
                "exception_type": _full_type_name(type(err)),
                "traceback": traceback.format_tb(err.__traceback__),
            }
            message = "Exception when validating node"
            reasons = [_error("exception_during_validation", message, str(err), extra)]
            validated[output] = (False, reasons, output)
        if valid is True:
            good_outputs.append(output)
            continue
        failures.append((output, reasons))
        for node_id, (node_valid, node_reasons, _) in validated.items():
            # a node downstream of a bad one is invalid without errors of its own: left out
            if node_valid is not True and node_reasons:
                entry = node_errors.setdefault(
                    node_id,
                    {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    },
                )
                entry["dependent_outputs"].append(output)
    if not good_outputs:
        details = "\n".join(
            f"{error['message']}: {error['details']}" for _, errors in failures for error in errors
        )
        message = "Prompt outputs failed validation"
        error = _error("prompt_outputs_failed_validation", message, details, {})
        return False, error, [], node_errors
    return True, None, good_outputs, node_errors


def execution_order(prompt: Mapping[str, Any], outputs: list[str]) -> list[str]:
    """The order ``ExecutionList`` runs the nodes: of the nodes whose inputs are ready, an
    output node first, else one that feeds an output node, else one two links from one, else
    the first added (``add_node`` walks each output's inputs depth first, last input first)."""
    pending: dict[str, bool] = {}
    block_count: dict[str, int] = {}
    blocking: dict[str, dict[str, bool]] = {}
    for output in outputs:
        stack, links = [output], []
        while stack:
            node_id = stack.pop()
            if node_id in pending:
                continue
            pending[node_id], block_count[node_id], blocking[node_id] = True, 0, {}
            for value in prompt[node_id]["inputs"].values():
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                    stack.append(value[0])
                    links.append((value[0], node_id))
        for source, target in links:
            if target not in blocking[source]:
                blocking[source][target] = True
                block_count[target] += 1

    def is_output(node_id: str) -> bool:
        return bool(_NODES[prompt[node_id]["class_type"]].get("OUTPUT_NODE"))

    def pick(ready: list[str]) -> str:
        for node_id in ready:
            if is_output(node_id):
                return node_id
        for node_id in ready:
            if any(is_output(target) for target in blocking[node_id]):
                return node_id
        for node_id in ready:
            for target in blocking[node_id]:
                if any(is_output(further) for further in blocking[target]):
                    return node_id
        return ready[0]

    order = []
    while pending:
        node_id = pick([node for node in pending if block_count[node] == 0])
        order.append(node_id)
        del pending[node_id]
        for target in blocking.pop(node_id):
            block_count[target] -= 1
    return order


class Interrupted(Exception):
    """``/interrupt`` stopped the prompt (ComfyUI's ``InterruptProcessingException``)."""


class ComfyUIStandIn:
    """The stand-in server; ``async with ComfyUIStandIn() as comfy:`` then ``comfy.url``."""

    def __init__(self, checkpoints: list[str] | None = None, *, step_delay: float = 0.0) -> None:
        self.checkpoints = checkpoints or ["sd_xl_base_1.0.safetensors"]
        self.step_delay = step_delay
        self.fail_node_type: str | None = None
        self.stall = False
        self.drop_websockets_after: int | None = None
        self.refuse_websockets = False
        self.stats_held: asyncio.Event | None = None
        self.submissions: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        # the input, output and temp folders: path (subfolder/name) -> bytes
        self.uploads: dict[str, bytes] = {}
        self.outputs: dict[str, bytes] = {}
        self.temp: dict[str, bytes] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.freed: list[dict[str, Any]] = []
        self._queue: list[tuple[Any, ...]] = []
        self._running: tuple[Any, ...] | None = None
        self._wake = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._client_id: str | None = None
        self._last_node: str | None = None
        self._number = 0
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self.url = ""

    @property
    def folders(self) -> dict[str, dict[str, bytes]]:
        return {"input": self.uploads, "output": self.outputs, "temp": self.temp}

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._count])
        app.add_routes(
            [
                web.get("/ws", self._ws),
                web.get("/prompt", self._get_prompt),
                web.post("/prompt", self._post_prompt),
                web.get("/object_info", self._object_info),
                web.get("/object_info/{node_class}", self._object_info_node),
                web.get("/history", self._all_history),
                web.get("/history/{prompt_id}", self._history),
                web.post("/history", self._post_history),
                web.get("/view", self._view),
                web.post("/upload/image", self._upload),
                web.get("/queue", self._get_queue),
                web.post("/queue", self._post_queue),
                web.post("/interrupt", self._post_interrupt),
                web.post("/free", self._free),
                web.get("/features", self._features),
                web.get("/system_stats", self._system_stats),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._worker = asyncio.create_task(self._prompt_worker())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            self._worker.cancel()
        for socket in list(self._sockets.values()):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def queue_remaining(self) -> int:
        return len(self._queue) + (self._running is not None)

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls[f"{request.method} {request.path}"] += 1
        response: web.StreamResponse = await handler(request)
        return response

    def _input_files(self) -> list[str]:
        """``LoadImage``'s list: image files at the top of the input folder."""
        return [
            name
            for name in self.uploads
            if "/" not in name
            and (mimetypes.guess_type(name, strict=False)[0] or "").startswith("image/")
        ]

    def _object_infos(self) -> dict[str, Any]:
        return object_info(self.checkpoints, self._input_files())

    # --- the WebSocket -------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_websockets:
            return web.Response(status=503)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets.pop(sid, None)
        self._sockets[sid] = socket
        try:
            await self._send("status", {"status": self._queue_info(), "sid": sid}, sid)
            if self._client_id == sid and self._last_node is not None:
                await self._send("executing", {"node": self._last_node}, sid)
            first = True
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    with contextlib.suppress(ValueError, AttributeError):
                        data = json.loads(message.data)
                        if first and data.get("type") == "feature_flags":
                            await self._send("feature_flags", dict(_FEATURES), sid)
                    first = False
        finally:
            if self._sockets.get(sid) is socket:
                del self._sockets[sid]
        return socket

    async def _send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        """``PromptServer.send_json``: to every socket when ``sid`` is None."""
        targets = list(self._sockets.values()) if sid is None else [self._sockets.get(sid)]
        for socket in targets:
            if socket is not None and not socket.closed:
                with contextlib.suppress(ConnectionError, ClientError):  # as ComfyUI: logged
                    await socket.send_json({"type": event, "data": data})

    async def _drop_sockets(self) -> None:
        for socket in list(self._sockets.values()):
            await socket.close()
        self._sockets.clear()

    # --- the queue -----------------------------------------------------------------------------

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue_remaining}}

    async def _queue_updated(self) -> None:
        await self._send("status", {"status": self._queue_info()}, None)

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._queue_info())

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "number" in body:
            number: float = float(body["number"])
        else:
            number = -self._number if body.get("front") else self._number
            self._number += 1
        if "prompt" not in body:
            no_prompt = _error("no_prompt", "No prompt provided", "No prompt provided", {})
            return web.json_response({"error": no_prompt, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        self.submissions[hashlib.sha256(_canonical(prompt)).hexdigest()] += 1
        valid, error, outputs, node_errors = validate_prompt(
            prompt, self._object_infos(), self.folders, body.get("partial_execution_targets")
        )
        extra_data = body.get("extra_data", {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not valid:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        sensitive = {key: extra_data.pop(key) for key in _SENSITIVE if key in extra_data}
        extra_data["create_time"] = int(time.time() * 1000)
        heapq.heappush(self._queue, (number, prompt_id, prompt, extra_data, outputs, sensitive))
        self._wake.set()
        await self._queue_updated()
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
        )

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [list(self._running[:5])] if self._running else []
        pending = [list(item[:5]) for item in self._queue]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self._queue.clear()
            await self._queue_updated()
        for prompt_id in body.get("delete") or []:
            for index, item in enumerate(self._queue):
                if item[1] == prompt_id:
                    del self._queue[index]
                    heapq.heapify(self._queue)
                    await self._queue_updated()
                    break
        return web.Response()

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        prompt_id = body.get("prompt_id")
        if not prompt_id or (self._running is not None and self._running[1] == prompt_id):
            self._interrupt.set()
        return web.Response()

    async def _free(self, request: web.Request) -> web.Response:
        self.freed.append(await request.json())
        return web.Response()

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(dict(_FEATURES))

    async def _system_stats(self, request: web.Request) -> web.Response:
        if self.stats_held is not None:
            await self.stats_held.wait()
        return web.json_response(
            {
                "system": {
                    "os": sys.platform,
                    "ram_total": 0,
                    "ram_free": 0,
                    "comfyui_version": COMFYUI_VERSION,
                    "required_frontend_version": "1.42.15",
                    "installed_templates_version": "0.9.62",
                    "required_templates_version": "0.9.62",
                    "python_version": sys.version,
                    "pytorch_version": "stand-in",
                    "embedded_python": False,
                    "argv": ["main.py"],
                },
                "devices": [
                    {
                        "name": "cpu",
                        "type": "cpu",
                        "index": None,
                        "vram_total": 0,
                        "vram_free": 0,
                        "torch_vram_total": 0,
                        "torch_vram_free": 0,
                    }
                ],
            }
        )

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self._object_infos())

    async def _object_info_node(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        if name not in _NODES:
            return web.json_response({})
        return web.json_response({name: node_info(name, self.checkpoints, self._input_files())})

    # --- results -------------------------------------------------------------------------------

    async def _all_history(self, request: web.Request) -> web.Response:
        """``PromptQueue.get_history``: the last ``max_items`` entries, or from ``offset``."""
        max_items = request.query.get("max_items")
        limit = None if max_items is None else int(max_items)
        offset = int(request.query.get("offset", -1))
        if offset < 0 and limit is not None:
            offset = len(self.history) - limit
        answer: dict[str, Any] = {}
        for index, prompt_id in enumerate(self.history):
            if index >= offset:
                answer[prompt_id] = self.history[prompt_id]
                if limit is not None and len(answer) >= limit:
                    break
        return web.json_response(answer)

    async def _history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete") or []:
            self.history.pop(prompt_id, None)
        return web.Response()

    async def _view(self, request: web.Request) -> web.Response:
        if "filename" not in request.query:
            return web.Response(status=404)
        filename, folder = _annotated(request.query["filename"])
        if not filename or filename.startswith("/") or ".." in filename:
            return web.Response(status=400)
        folder = folder or request.query.get("type", "output")
        if folder not in self.folders:
            return web.Response(status=400)
        subfolder = request.query.get("subfolder", "")
        if posixpath.normpath(posixpath.join("/root", subfolder)).split("/")[1] != "root":
            return web.Response(status=403)
        filename = posixpath.basename(filename)
        data = self.folders[folder].get(posixpath.normpath(posixpath.join(subfolder, filename)))
        if data is None:
            return web.Response(status=404)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return web.Response(
            body=data,
            headers={"Content-Disposition": f'filename="{filename}"', "Content-Type": content_type},
        )

    async def _upload(self, request: web.Request) -> web.Response:
        """``server.image_upload``: a same-named file of other content is kept, the new one
        numbered (``name (1).png``), unless ``overwrite``; one of the same content is reused."""
        post = await request.post()
        image = post.get("image")
        folder = str(post.get("type") or "input")
        if folder not in self.folders:  # ComfyUI fails on an unknown type
            raise web.HTTPInternalServerError
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        filename = image.filename
        if not filename:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", ""))
        path = posixpath.normpath(posixpath.join(subfolder, filename))
        if path.startswith(("../", "/")) or path == "..":
            return web.Response(status=400)
        data = image.file.read()
        store = self.folders[folder]
        duplicate = False
        if post.get("overwrite") not in ("true", "1"):
            stem, suffix = posixpath.splitext(filename)
            counter = 1
            while path in store:
                if store[path] == data:
                    duplicate = True
                    break
                filename = f"{stem} ({counter}){suffix}"
                path = posixpath.normpath(posixpath.join(subfolder, filename))
                counter += 1
        if not duplicate:
            store[path] = data
        return web.json_response({"name": filename, "subfolder": subfolder, "type": folder})

    # --- running prompts -----------------------------------------------------------------------

    async def _prompt_worker(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            self._running = heapq.heappop(self._queue)
            await self._queue_updated()
            number, prompt_id, prompt, extra_data, outputs, sensitive = self._running
            success, result, messages = await self._execute(
                prompt_id, prompt, {**extra_data, **sensitive}, outputs
            )
            self._running = None
            self.history[prompt_id] = {
                "prompt": [number, prompt_id, prompt, extra_data, outputs],
                "outputs": {},
                "status": {
                    "status_str": "success" if success else "error",
                    "completed": success,
                    "messages": messages,
                },
                **result,
            }
            await self._queue_updated()
            if self._client_id is not None:
                ended = {"node": None, "prompt_id": prompt_id}
                await self._send("executing", ended, self._client_id)

    async def _add_message(
        self, messages: list[list[Any]], event: str, data: dict[str, Any], *, broadcast: bool
    ) -> None:
        """``PromptExecutor.add_message``: kept for the history; sent to the client (to everyone
        when broadcast without a client)."""
        data = {**data, "timestamp": int(time.time() * 1000)}
        messages.append([event, data])
        if self._client_id is not None or broadcast:
            await self._send(event, data, self._client_id)

    async def _progress_state(
        self, prompt_id: str, states: dict[str, dict[str, Any]], node_id: str, **state: Any
    ) -> None:
        """``WebUIProgressHandler``: every node started so far, to the client (or everyone)."""
        states.setdefault(node_id, {}).update(state)
        nodes = {
            node: {
                "value": entry["value"],
                "max": entry["max"],
                "state": entry["state"],
                "node_id": node,
                "prompt_id": prompt_id,
                "display_node_id": node,
                "parent_node_id": None,
                "real_node_id": node,
            }
            for node, entry in states.items()
        }
        data = {"prompt_id": prompt_id, "nodes": nodes}
        await self._send("progress_state", data, self._client_id)

    async def _execute(
        self,
        prompt_id: str,
        prompt: dict[str, Any],
        extra_data: dict[str, Any],
        outputs: list[str],
    ) -> tuple[bool, dict[str, Any], list[list[Any]]]:
        """``PromptExecutor.execute_async``: (success, history outputs and meta, messages)."""
        self._interrupt.clear()
        self._client_id = client_id = extra_data.get("client_id")
        messages: list[list[Any]] = []
        start = {"prompt_id": prompt_id}
        await self._add_message(messages, "execution_start", start, broadcast=False)
        cached = {"nodes": [], "prompt_id": prompt_id}
        await self._add_message(messages, "execution_cached", cached, broadcast=False)
        values: dict[str, list[Any]] = {}
        ui_outputs: dict[str, Any] = {}
        states: dict[str, dict[str, Any]] = {}
        executed: list[str] = []
        success = True
        for node_id in execution_order(prompt, outputs):
            node = prompt[node_id]
            await self._progress_state(
                prompt_id, states, node_id, state="running", value=0.0, max=1.0
            )
            declared = _NODES[node["class_type"]]["INPUT_TYPES"]
            inputs: dict[str, Any] = {}
            try:
                inputs = {
                    key: values[value[0]][value[1]] if isinstance(value, list) else value
                    for key, value in node["inputs"].items()
                    if _input_info(declared, key)[1] is not None
                }
                if client_id is not None:
                    self._last_node = node_id
                    await self._send(
                        "executing",
                        {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
                        client_id,
                    )
                if self._interrupt.is_set():  # nodes.before_node_execution
                    raise Interrupted
                if node["class_type"] == self.fail_node_type:
                    self.fail_node_type = None
                    raise RuntimeError(f"Stand-in failure in {node['class_type']}")
                ui: dict[str, Any] = {}
                values[node_id] = await self._run_node(
                    prompt_id, node_id, node, inputs, ui, prompt, extra_data, states
                )
            except Interrupted:
                data = {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": node["class_type"],
                    "executed": list(executed),
                }
                await self._add_message(messages, "execution_interrupted", data, broadcast=True)
                success = False
                break
            except Exception as err:
                data = {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": node["class_type"],
                    "executed": list(executed),
                    "exception_message": f"{err}\n",
                    "exception_type": _full_type_name(type(err)),
                    "traceback": traceback.format_tb(err.__traceback__),
                    "current_inputs": {key: [_format(value)] for key, value in inputs.items()},
                    "current_outputs": [],
                }
                await self._add_message(messages, "execution_error", data, broadcast=False)
                success = False
                break
            if ui:
                meta = {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
                ui_outputs[node_id] = {"meta": meta, "output": ui}
                if client_id is not None:
                    await self._send(
                        "executed",
                        {
                            "node": node_id,
                            "display_node": node_id,
                            "output": ui,
                            "prompt_id": prompt_id,
                        },
                        client_id,
                    )
            finished = states[node_id]["max"]
            await self._progress_state(prompt_id, states, node_id, state="finished", value=finished)
            executed.append(node_id)
        else:
            success_data = {"prompt_id": prompt_id}
            await self._add_message(messages, "execution_success", success_data, broadcast=False)
        self._last_node = None
        result = {
            "outputs": {node: entry["output"] for node, entry in ui_outputs.items()},
            "meta": {node: entry["meta"] for node, entry in ui_outputs.items()},
        }
        return success, result, messages

    async def _run_node(  # noqa: PLR0911 - one branch per node type
        self,
        prompt_id: str,
        node_id: str,
        node: Mapping[str, Any],
        inputs: dict[str, Any],
        ui: dict[str, Any],
        prompt: dict[str, Any],
        extra_data: Mapping[str, Any],
        states: dict[str, dict[str, Any]],
    ) -> list[Any]:
        kind = node["class_type"]
        if kind == "CheckpointLoaderSimple":
            model = inputs["ckpt_name"]
            return [model, model, model]
        if kind == "CLIPTextEncode":
            return [inputs["text"]]
        if kind == "EmptyLatentImage":  # a latent is an eighth of the size, rounded down
            size = (inputs["width"] // 8 * 8, inputs["height"] // 8 * 8)
            return [{"size": size, "batch": inputs["batch_size"], "source": "empty"}]
        if kind == "LoadImage":
            name, folder = _annotated(inputs["image"])
            data = self.folders[folder or "input"][posixpath.normpath(name)]
            return [[Image.open(io.BytesIO(data)).convert("RGB")], None]
        if kind == "ImageScale":
            return [[_scale(image, inputs) for image in inputs["image"]]]
        if kind == "VAEEncode":
            pixels = inputs["pixels"]
            digest = hashlib.sha256(b"".join(image.tobytes() for image in pixels)).hexdigest()
            size = (pixels[0].width // 8 * 8, pixels[0].height // 8 * 8)
            return [{"size": size, "batch": len(pixels), "source": digest}]
        if kind == "KSampler":
            await self._sample(prompt_id, node_id, int(inputs["steps"]), states)
            latent = inputs["latent_image"]
            recipe = [
                inputs["seed"], inputs["positive"], inputs["negative"], inputs["model"],
                latent["source"], inputs["denoise"],
            ]  # fmt: skip
            return [{"size": latent["size"], "batch": latent["batch"], "recipe": recipe}]
        if kind == "VAEDecode":
            samples = inputs["samples"]
            recipe = samples["recipe"]
            return [[_draw(samples["size"], [*recipe, i]) for i in range(samples["batch"])]]
        if kind in _SAVERS:
            prefix = inputs.get("filename_prefix", "ComfyUI")
            ui["images"] = self._save(kind, inputs["images"], prefix, prompt, extra_data)
            return []
        raise RuntimeError(f"The stand-in cannot run {kind}")

    async def _sample(
        self, prompt_id: str, node_id: str, steps: int, states: dict[str, dict[str, Any]]
    ) -> None:
        for step in range(1, steps + 1):
            if self.stall:
                await self._interrupt.wait()
            if self._interrupt.is_set():  # the progress hook checks before it reports
                raise Interrupted
            await self._progress_state(
                prompt_id, states, node_id, state="running", value=step, max=steps
            )
            await self._send(
                "progress",
                {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                self._client_id,
            )
            if self.drop_websockets_after is not None and step >= self.drop_websockets_after:
                self.drop_websockets_after = None
                await self._drop_sockets()
            await asyncio.sleep(self.step_delay)

    def _save(
        self,
        kind: str,
        images: list[Image.Image],
        prefix: str,
        prompt: Mapping[str, Any],
        extra_data: Mapping[str, Any],
    ) -> list[dict[str, str]]:
        """``SaveImage.save_images`` with ``folder_paths.get_save_image_path``."""
        folder, temporary, compress_level = _SAVERS[kind]
        if temporary:
            letters = "abcdefghijklmnopqrstupvxyz"  # sic, as ComfyUI's
            prefix += "_temp_" + "".join(random.choice(letters) for _ in range(5))  # noqa: S311
        if "%" in prefix:
            prefix = _prefix_vars(prefix, images[0].width, images[0].height)
        path = posixpath.normpath(prefix)
        subfolder, stem = posixpath.dirname(path), posixpath.basename(path)
        if posixpath.normpath(posixpath.join("/root", subfolder)).split("/")[1] != "root":
            message = "**** ERROR: Saving image outside the output folder is not allowed."
            raise Exception(message)
        store = self.folders[folder]
        counter = _next_counter(store, subfolder, stem)
        results = []
        for batch_number, image in enumerate(images):
            metadata = PngInfo()
            metadata.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_data.get("extra_pnginfo") or {}).items():
                metadata.add_text(key, json.dumps(value))
            filename = f"{stem.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", pnginfo=metadata, compress_level=compress_level)
            store[posixpath.join(subfolder, filename)] = buffer.getvalue()
            results.append({"filename": filename, "subfolder": subfolder, "type": folder})
            counter += 1
        return results


def _next_counter(store: Mapping[str, bytes], subfolder: str, stem: str) -> int:
    """One past the highest ``{stem}_NNNNN_`` number in the folder, as ComfyUI counts."""
    highest = 0
    for path in store:
        if posixpath.dirname(path) != subfolder:
            continue
        name = posixpath.basename(path)
        if name[: len(stem)] != stem or name[len(stem) : len(stem) + 1] != "_":
            continue
        with contextlib.suppress(ValueError):
            highest = max(highest, int(name[len(stem) + 1 :].split("_")[0]))
    return highest + 1


def _prefix_vars(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    for name, value in (
        ("width", str(width)),
        ("height", str(height)),
        ("year", str(now.tm_year)),
        ("month", str(now.tm_mon).zfill(2)),
        ("day", str(now.tm_mday).zfill(2)),
        ("hour", str(now.tm_hour).zfill(2)),
        ("minute", str(now.tm_min).zfill(2)),
        ("second", str(now.tm_sec).zfill(2)),
    ):
        prefix = prefix.replace(f"%{name}%", value)
    return prefix


def _format(value: Any) -> Any:
    """``execution.format_value``."""
    return value if value is None or isinstance(value, int | float | bool | str) else str(value)


def _scale(image: Image.Image, inputs: Mapping[str, Any]) -> Image.Image:
    """``ImageScale.upscale`` with ``comfy.utils.common_upscale``'s centre crop."""
    width, height = inputs["width"], inputs["height"]
    if width == 0 and height == 0:
        return image
    if width == 0:
        width = max(1, round(image.width * height / image.height))
    elif height == 0:
        height = max(1, round(image.height * width / image.width))
    if inputs["crop"] == "center":
        old_aspect, new_aspect = image.width / image.height, width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((image.width - image.width * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((image.height - image.height * (old_aspect / new_aspect)) / 2)
        image = image.crop((x, y, image.width - x, image.height - y))
    methods = {
        "nearest-exact": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "area": Image.Resampling.BOX,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
    }
    return image.resize((width, height), methods[inputs["upscale_method"]])


def _canonical(prompt: Any) -> bytes:
    return json.dumps(prompt, sort_keys=True).encode()


def _draw(size: tuple[int, int], recipe: list[Any]) -> Image.Image:
    """A picture that only the recipe (seed, prompts, model, source, denoise, index) decides."""
    rng = random.Random(hashlib.sha256(_canonical(copy.deepcopy(recipe))).digest())  # noqa: S311 (pictures, not secrets)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = rng.randrange(x0, size[0] + 1), rng.randrange(y0, size[1] + 1)
        draw.ellipse((x0, y0, x1, y1), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image
