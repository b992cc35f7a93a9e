"""The editors' terminal UI (Textual). Talks only to `publisher.service`."""
