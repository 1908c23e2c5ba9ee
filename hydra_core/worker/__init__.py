"""The Hydra worker: the process on the GPU host that Home Assistant talks to."""
