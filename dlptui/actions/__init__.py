"""The use cases over the platform ports, called by both faces (cli, tui)."""
