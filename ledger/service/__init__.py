"""The application layer: commands in, events appended through the event-log port."""
