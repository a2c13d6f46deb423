"""One module per command or ribbon button, shared by the CLI and the ribbon over one port (port.BookPort)."""
