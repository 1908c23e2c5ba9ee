"""The knowledge part: research, feeds, mail awareness, and a searchable memory."""
