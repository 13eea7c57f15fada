"""One module per subcommand; each exposes a plain `run(...)` that tests and Python callers use directly."""
