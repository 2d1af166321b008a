"""The ``nbpack`` command line: one subcommand per job, and the one place an error becomes a line and an exit code."""

from nbpack.cli.commands import cli, main

__all__ = ["cli", "main"]
