"""The knowledge part: the worker's knowledge base (search, research findings, memories, feeds,
flagged mail) in Home Assistant: its sensors, actions, Assist sentences and LLM tools, the
research event, the briefing's sections, and Home Assistant's mail and feed events sent on."""
