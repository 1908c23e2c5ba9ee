"""The parts of the worker, as Home Assistant shows them: each has its own module or package with
its coordinator, entities, actions and events, and one line in registry.PARTS."""
