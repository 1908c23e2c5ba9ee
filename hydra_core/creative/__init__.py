"""The creative pipeline: Fountain chapters, the style book and plan, ComfyUI, voice lines and
the Ren'Py package."""
