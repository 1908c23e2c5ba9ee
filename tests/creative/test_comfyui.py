"""The ComfyUI client against the ComfyUI stand-in over loopback HTTP and WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import io
import json
from pathlib import Path
import socket

import aiohttp
from PIL import Image
import pytest

from hydra_core.creative.comfyui import (
    ComfyUIClient,
    ComfyUIUnavailableError,
    ExecutionFailedError,
    GraphInvalidError,
    Progress,
    check_graph,
)
from hydra_core.creative.graphs import (
    TEMPLATE_NAMES,
    TemplateError,
    load_template,
    reference_name,
)
from tests.comfyui_standin import SAMPLERS, ComfyUIStandIn, object_info

pytestmark = pytest.mark.usefixtures("loopback_sockets")

CHECKPOINT = "sd_xl_base_1.0.safetensors"


def _png(color: tuple[int, int, int], size: tuple[int, int] = (96, 128)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


REFERENCE = _png((200, 30, 90))


def _values(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "checkpoint": CHECKPOINT,
        "prompt": "a throne room at night, candles",
        "negative": "blurry",
        "seed": 1234,
        "steps": 4,
        "width": 64,
        "height": 48,
        "reference": reference_name(REFERENCE),
    }
    values.update(overrides)
    return values


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyUIStandIn]:
    async with ComfyUIStandIn([CHECKPOINT]) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def _client(session: aiohttp.ClientSession, *urls: str) -> ComfyUIClient:
    return ComfyUIClient(session, urls, request_timeout=5, render_timeout=20, poll_interval=0.05)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
async def test_each_template_renders_and_its_image_is_fetched(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession, name: str
) -> None:
    graph = load_template(name).fill(**_values())
    result = await _client(session, comfy.url).render(
        graph, images={_values()["reference"]: REFERENCE}
    )  # type: ignore[dict-item]

    assert len(result.images) == 1
    image = Image.open(io.BytesIO(result.images[0].data))
    assert image.format == "PNG"
    assert image.size == (64, 48)
    assert result.images[0].subfolder == "hydra"
    assert result.images[0].filename.startswith(name)


async def test_same_seed_and_prompt_give_the_same_image_another_seed_another(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    client = _client(session, comfy.url)
    template = load_template("background")
    first = await client.render(template.fill(**_values()))
    again = await client.render(template.fill(**_values()))
    other = await client.render(template.fill(**_values(seed=99)))

    def pixels(result: object) -> bytes:
        return Image.open(io.BytesIO(result.images[0].data)).tobytes()  # type: ignore[attr-defined]

    assert pixels(first) == pixels(again)
    assert pixels(first) != pixels(other)


async def test_progress_arrives_in_order(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    seen: list[Progress] = []
    await _client(session, comfy.url).render(
        load_template("background").fill(**_values(steps=5)), on_progress=seen.append
    )

    nodes = [event.node for event in seen if event.value is None]
    # ComfyUI's ExecutionList order: the loader first (two links from the output node), then
    # the other ready nodes as add_node found them (last input first), then down to the output
    assert nodes == ["1", "4", "3", "2", "5", "6", "7"]
    steps = [(event.node, event.value, event.max) for event in seen if event.value is not None]
    assert steps == [("5", step, 5) for step in range(1, 6)]
    sampler_start = seen.index(Progress(seen[0].prompt_id, "5"))
    decode_start = seen.index(Progress(seen[0].prompt_id, "6"))
    assert all(sampler_start < seen.index(Progress(seen[0].prompt_id, "5", s, 5)) < decode_start
               for s in range(1, 6))  # fmt: skip


async def test_a_missing_node_type_is_refused_naming_it_and_nothing_is_queued(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    graph = load_template("background").fill(**_values())
    graph["8"] = {"class_type": "IPAdapterApply", "inputs": {"image": ["6", 0]}}

    with pytest.raises(GraphInvalidError, match=r"Node 8: .* has no node type 'IPAdapterApply'"):
        await _client(session, comfy.url).render(graph)

    assert comfy.calls["POST /prompt"] == 0
    assert comfy.history == {}


async def test_a_missing_checkpoint_is_refused_naming_node_and_input(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    graph = load_template("background").fill(**_values(checkpoint="dreamshaper_8.safetensors"))

    with pytest.raises(GraphInvalidError) as refused:
        await _client(session, comfy.url).render(graph)

    assert "Node 1 (CheckpointLoaderSimple) input ckpt_name" in refused.value.message
    assert "'dreamshaper_8.safetensors' is not on ComfyUI" in refused.value.message
    assert CHECKPOINT in refused.value.message
    assert (refused.value.node_id, refused.value.input_name) == ("1", "ckpt_name")
    assert comfy.calls["POST /prompt"] == 0


async def test_a_checkpoint_added_since_the_last_look_is_found(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    client = _client(session, comfy.url)
    await client.render(load_template("background").fill(**_values()))
    comfy.checkpoints.append("new_model.safetensors")

    result = await client.render(
        load_template("background").fill(**_values(checkpoint="new_model.safetensors"))
    )

    assert len(result.images) == 1


async def test_comfyui_refusing_a_graph_is_a_clear_error(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    """A graph that slips past the client's check: ComfyUI's own 400 names node and input."""
    server = _client(session, comfy.url).servers[0]
    graph = load_template("background").fill(**_values(checkpoint="missing.safetensors"))

    with pytest.raises(GraphInvalidError) as refused:
        await server.submit(graph, "client")

    assert "refused node 1 (CheckpointLoaderSimple): Value not in list" in refused.value.message
    assert refused.value.input_name == "ckpt_name"
    assert comfy.history == {}


async def test_comfyui_down_is_a_clear_error(session: aiohttp.ClientSession) -> None:
    port = _free_port()
    with pytest.raises(
        ComfyUIUnavailableError,
        match=rf"No ComfyUI server can be reached \(tried 127.0.0.1:{port}\)",
    ):
        await _client(session, f"http://127.0.0.1:{port}").render(
            load_template("background").fill(**_values())
        )


async def test_credentials_in_a_server_address_stay_out_of_errors(
    session: aiohttp.ClientSession,
) -> None:
    port = _free_port()
    with pytest.raises(ComfyUIUnavailableError) as refused:
        await _client(session, f"http://hydra:s3cret@127.0.0.1:{port}/").render(
            load_template("background").fill(**_values())
        )
    assert "s3cret" not in str(refused.value)


async def test_an_execution_error_names_the_node_and_comfyuis_message(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    comfy.fail_node_type = "VAEDecode"

    with pytest.raises(ExecutionFailedError) as failed:
        await _client(session, comfy.url).render(load_template("background").fill(**_values()))

    assert failed.value.node_id == "6"
    assert failed.value.node_type == "VAEDecode"
    assert "node 6 (VAEDecode): Stand-in failure in VAEDecode" in failed.value.message


@pytest.mark.parametrize("refuse_reconnect", [False, True], ids=["reconnects", "history-polling"])
async def test_a_websocket_drop_mid_prompt_still_gets_the_result(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession, refuse_reconnect: bool
) -> None:
    comfy.step_delay = 0.05
    comfy.drop_websockets_after = 2
    comfy.refuse_websockets = False
    graph = load_template("background").fill(**_values(steps=8))
    client = _client(session, comfy.url)

    async def refuse_after_drop() -> None:
        while comfy.drop_websockets_after is not None:
            await asyncio.sleep(0.005)
        comfy.refuse_websockets = refuse_reconnect

    watcher = asyncio.create_task(refuse_after_drop())
    result = await client.render(graph)
    await watcher

    assert len(result.images) == 1
    assert Image.open(io.BytesIO(result.images[0].data)).size == (64, 48)
    assert sum(count for call, count in comfy.calls.items() if call.startswith("GET /history"))


async def test_cancel_interrupts_the_prompt_on_comfyui(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    comfy.stall = True
    seen: list[Progress] = []
    render = asyncio.create_task(
        _client(session, comfy.url).render(
            load_template("background").fill(**_values()), on_progress=seen.append
        )
    )
    while not any(event.node == "5" for event in seen):
        await asyncio.sleep(0.01)

    render.cancel()
    with pytest.raises(asyncio.CancelledError):
        await render

    assert comfy.calls["POST /interrupt"] == 1
    for _ in range(100):
        if comfy.history:
            break
        await asyncio.sleep(0.01)
    (entry,) = comfy.history.values()
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert comfy.queue_remaining == 0


async def test_two_servers_one_down_the_other_is_used(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    down = f"http://127.0.0.1:{_free_port()}"

    result = await _client(session, down, comfy.url).render(
        load_template("background").fill(**_values())
    )

    assert result.server == comfy.url.removeprefix("http://")
    assert comfy.calls["POST /prompt"] == 1


async def test_the_server_with_the_shorter_queue_is_used(session: aiohttp.ClientSession) -> None:
    async with ComfyUIStandIn([CHECKPOINT]) as busy, ComfyUIStandIn([CHECKPOINT]) as idle:
        busy.stall = True
        client = _client(session, busy.url, idle.url)
        stalled = asyncio.create_task(
            client.servers[0].submit(load_template("background").fill(**_values()), "other")
        )
        await stalled
        result = await client.render(load_template("background").fill(**_values(seed=7)))

        assert result.server == idle.url.removeprefix("http://")
        assert busy.calls["POST /prompt"] == 1


async def test_free_asks_comfyui_to_unload_models(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    await _client(session, comfy.url).servers[0].free()

    assert comfy.freed == [{"unload_models": True, "free_memory": True}]


def test_a_user_template_overrides_the_shipped_one(tmp_path: Path) -> None:
    graph = json.loads(json.dumps(load_template("background").graph))
    graph["5"]["inputs"]["sampler_name"] = "{{sampler}}"
    (tmp_path / "background.json").write_text(json.dumps(graph))

    template = load_template("background", tmp_path)

    assert "sampler" in template.placeholders
    assert template.fill(**_values(), sampler="dpmpp_2m")["5"]["inputs"]["sampler_name"] == (
        "dpmpp_2m"
    )
    assert load_template("character", tmp_path).source == "shipped character.json"


def test_a_template_missing_a_value_names_it() -> None:
    values = _values()
    del values["seed"]
    with pytest.raises(TemplateError, match="needs a value for seed"):
        load_template("background").fill(**values)


def test_a_ui_workflow_as_template_says_how_to_export(tmp_path: Path) -> None:
    (tmp_path / "background.json").write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(TemplateError, match=r"Save \(API\)"):
        load_template("background", tmp_path)


# --- the client's graph check agrees with ComfyUI's validation ------------------------------------

# Nodes the stand-in lacks, as ComfyUI's /object_info shows them (only what the check reads).
_EXTRA_NODES = {
    # nodes.py: an optional input
    "ControlNetApplyAdvanced": {
        "input": {
            "required": {
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "control_net": ["CONTROL_NET"],
                "image": ["IMAGE"],
                "strength": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}],
                "start_percent": ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0}],
                "end_percent": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}],
            },
            "optional": {"vae": ["VAE"]},
        },
        "output": ["CONDITIONING", "CONDITIONING"],
        "output_node": False,
    },
    "ControlNetLoader": {
        "input": {"required": {"control_net_name": [["canny.safetensors"]]}},
        "output": ["CONTROL_NET"],
        "output_node": False,
    },
    # comfy_extras/nodes_post_processing.py, a V3 node: a match-type input and output
    "ResizeImageMaskNode": {
        "input": {
            "required": {
                "input": [
                    "COMFY_MATCHTYPE_V3",
                    {"template": {"template_id": "input_type", "allowed_types": "IMAGE,MASK"}},
                ],
                "resize_type": ["COMFY_DYNAMICCOMBO_V3", {}],
                "scale_method": [
                    "COMBO",
                    {"options": ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]},
                ],
            }
        },
        "output": ["COMFY_MATCHTYPE_V3"],
        "output_node": False,
    },
    # a V3 MultiType input (as ResizeImageMaskNode's "match") and a V3 COMBO output
    "ImageOrMaskSize": {
        "input": {"required": {"match": ["IMAGE,MASK", {}]}},
        "output": ["INT", "INT"],
        "output_node": False,
    },
    "SamplerChoice": {
        "input": {"required": {"name": ["COMBO", {"options": SAMPLERS}]}},
        "output": ["COMBO"],
        "output_node": False,
    },
}


def _infos() -> dict[str, object]:
    return {**object_info([CHECKPOINT], [reference_name(REFERENCE)]), **_EXTRA_NODES}


def _background(**overrides: object) -> dict[str, object]:
    return load_template("background").fill(**_values(**overrides))


def _character() -> dict[str, object]:
    return load_template("character").fill(**_values())


def _accepted_number_as_text() -> dict[str, object]:
    graph = _background()
    graph["4"]["inputs"]["width"] = "64"  # ComfyUI converts with int()
    return graph


def _accepted_unneeded_node() -> dict[str, object]:
    graph = _background()  # no output depends on node 8: ComfyUI neither checks nor runs it
    graph["8"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "gone.ckpt"}}
    return graph


def _accepted_wrapped_value() -> dict[str, object]:
    graph = _background()
    graph["5"]["inputs"]["sampler_name"] = {"__value__": "euler"}
    return graph


@pytest.mark.parametrize(
    "make", [_accepted_number_as_text, _accepted_unneeded_node, _accepted_wrapped_value]
)
async def test_a_graph_comfyui_runs_passes_the_check_and_renders(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession, make: object
) -> None:
    graph = make()  # type: ignore[operator]
    check_graph(graph, _infos(), "comfy")

    result = await _client(session, comfy.url).render(graph)

    assert len(result.images) == 1


async def test_an_image_in_a_subfolder_of_the_input_folder_passes_the_check(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    """LoadImage's list shows only the input folder's top; ComfyUI checks the file exists."""
    form = aiohttp.FormData()
    form.add_field("image", REFERENCE, filename="pose.png", content_type="image/png")
    form.add_field("subfolder", "poses")
    async with session.post(f"{comfy.url}/upload/image", data=form) as response:
        assert await response.json() == {"name": "pose.png", "subfolder": "poses", "type": "input"}
    graph = _character()
    graph["4"]["inputs"]["image"] = "poses/pose.png"
    info = await _client(session, comfy.url).servers[0].object_info()
    assert "poses/pose.png" not in info["LoadImage"]["input"]["required"]["image"][0]

    check_graph(graph, info, "comfy")
    result = await _client(session, comfy.url).render(graph)

    assert len(result.images) == 1
    graph["4"]["inputs"]["image"] = "pose.png"
    with pytest.raises(GraphInvalidError, match=r"'pose\.png' is not on ComfyUI"):
        check_graph(graph, info, "comfy")


def test_v3_match_types_and_type_lists_link_as_in_comfyui() -> None:
    graph = _character()
    graph["10"] = {
        "class_type": "ResizeImageMaskNode",
        "inputs": {"input": ["4", 0], "resize_type": "scale by", "scale_method": "area"},
    }
    graph["6"]["inputs"]["pixels"] = ["10", 0]
    graph["11"] = {"class_type": "ImageOrMaskSize", "inputs": {"match": ["4", 0]}}
    graph["5"]["inputs"]["width"] = ["11", 0]

    check_graph(graph, _infos(), "comfy")


def _refused_number_link() -> tuple[dict[str, object], str]:
    graph = _background()
    graph["6"]["inputs"]["samples"] = [5, 0]  # ComfyUI looks up prompt[5]: no such key
    return graph, r"names node 5, and ComfyUI takes node ids as strings \('5'\)"


def _refused_cycle() -> tuple[dict[str, object], str]:
    graph = _background()
    graph["8"] = {
        "class_type": "ImageScale",
        "inputs": {
            "image": ["9", 0], "upscale_method": "area", "width": 8, "height": 8,
            "crop": "disabled",
        },
    }  # fmt: skip
    graph["9"] = {**graph["8"], "inputs": {**graph["8"]["inputs"], "image": ["8", 0]}}
    graph["7"]["inputs"]["images"] = ["8", 0]
    return graph, r"Nodes 8 -> 9 -> 8 depend on each other in a cycle"


@pytest.mark.parametrize("make", [_refused_number_link, _refused_cycle])
async def test_a_graph_comfyui_refuses_fails_the_check(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession, make: object
) -> None:
    graph, reason = make()  # type: ignore[operator]
    with pytest.raises(GraphInvalidError, match=reason):
        check_graph(graph, _infos(), "comfy")

    with pytest.raises(GraphInvalidError, match="refused node"):
        await _client(session, comfy.url).servers[0].submit(graph, "client")
    assert comfy.calls["POST /prompt"] == 1
    assert comfy.queue_remaining == 0


def test_an_optional_input_is_checked_when_given() -> None:
    graph = _background()
    loader = {"control_net_name": "canny.safetensors"}
    graph["8"] = {"class_type": "ControlNetLoader", "inputs": loader}
    graph["9"] = {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}}
    graph["10"] = {
        "class_type": "ControlNetApplyAdvanced",
        "inputs": {
            "positive": ["2", 0], "negative": ["3", 0], "control_net": ["8", 0],
            "image": ["9", 0], "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0,
        },
    }  # fmt: skip
    graph["5"]["inputs"]["positive"] = ["10", 0]
    graph["5"]["inputs"]["negative"] = ["10", 1]
    check_graph(graph, _infos(), "comfy")  # without it

    graph["10"]["inputs"]["vae"] = ["1", 1]

    with pytest.raises(GraphInvalidError, match="vae: node 1 gives CLIP, the input takes VAE"):
        check_graph(graph, _infos(), "comfy")


def test_a_combo_output_does_not_feed_a_list_input_as_in_comfyui() -> None:
    """validate_node_input compares "COMBO" with the list itself: a mismatch."""
    graph = _background()
    graph["8"] = {"class_type": "SamplerChoice", "inputs": {"name": "euler"}}
    graph["5"]["inputs"]["sampler_name"] = ["8", 0]

    with pytest.raises(GraphInvalidError, match="node 8 gives COMBO, the input takes a list"):
        check_graph(graph, _infos(), "comfy")


# --- the stand-in answers as ComfyUI does ---------------------------------------------------------


async def test_object_info_has_comfyuis_keys_and_definitions(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{comfy.url}/object_info/KSampler") as response:
        info = (await response.json())["KSampler"]

    assert list(info) == [
        "input", "input_order", "is_input_list", "output", "output_is_list", "output_name",
        "name", "display_name", "description", "python_module", "category", "output_node",
        "has_intermediate_output", "output_tooltips", "search_aliases",
    ]  # fmt: skip
    assert info["input_order"] == {
        "required": [
            "model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive",
            "negative", "latent_image", "denoise",
        ]
    }  # fmt: skip
    assert len(info["input"]["required"]["sampler_name"][0]) == 44
    assert info["input"]["required"]["seed"][1]["control_after_generate"] is True
    save = (await _client(session, comfy.url).servers[0].object_info())["SaveImage"]
    assert save["input_order"] == {
        "required": ["images", "filename_prefix"],
        "hidden": ["prompt", "extra_pnginfo"],
    }
    assert (save["output"], save["output_node"], save["display_name"]) == ([], True, "Save Image")


async def test_a_prompt_with_one_valid_output_is_queued_with_the_others_errors(
    comfy: ComfyUIStandIn, session: aiohttp.ClientSession
) -> None:
    graph = _background()
    graph["8"] = {"class_type": "PreviewImage", "inputs": {"images": ["9", 0]}}
    graph["9"] = {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 1]}}
    async with session.post(f"{comfy.url}/prompt", json={"prompt": graph}) as response:
        answer = await response.json()

    assert response.status == 200
    assert answer["node_errors"]["9"]["dependent_outputs"] == ["8"]
    assert answer["node_errors"]["9"]["errors"][0]["type"] == "return_type_mismatch"
    assert "8" not in answer["node_errors"]
    for _ in range(200):
        if answer["prompt_id"] in comfy.history:
            break
        await asyncio.sleep(0.01)
    entry = comfy.history[answer["prompt_id"]]
    assert entry["prompt"][4] == ["7"]
    assert list(entry["outputs"]) == ["7"]
