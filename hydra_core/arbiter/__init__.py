"""The models part: one VRAM arbiter for Hydra's own models, ComfyUI and local LLM servers."""
