"""The subcommands of ``docker-net-conformance``, one module each (conformance/cli.py's COMMANDS)."""
