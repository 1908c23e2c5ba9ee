"""Hydra on a Ray cluster: the head places admitted tasks on the nodes that fit them."""
