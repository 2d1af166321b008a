"""The ``nbpack`` command group: its subcommands come from one module per group (files, run_local, service, remote);
this is the one place where an error becomes a message line and an exit code."""

from __future__ import annotations

import subprocess
import sys

import click

from nbpack import __version__
from nbpack.cli import files, remote, run_local, service
from nbpack.errors import NbpackError, one_line

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nbpack")
def cli() -> None:
    """Notebook bundles between ESAP and Jupyter: build, run, serve, open anywhere, return."""


# One module per group of commands (--help lists them by name).
for _command in (
    files.build,
    files.validate,
    files.inspect,
    run_local.run,
    run_local.open_,
    run_local.demo,
    service.serve,
    service.gc,
    remote.push,
    remote.pull,
    remote.link,
    remote.returns_,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command group, turning nbpack errors into one line and exit code 1."""
    try:
        cli.main(args=argv, prog_name="nbpack", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("nbpack: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NbpackError as exc:
        click.echo(f"nbpack: error: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except subprocess.CalledProcessError as exc:
        click.echo(f"nbpack: error: {exc.cmd[0]} failed with exit code {exc.returncode}", err=True)
        sys.exit(1)
    except OSError as exc:
        # A path the user gave (-o /proc/x.zip, a file where a folder should be, a full disk): the writers are atomic,
        # so nothing is left half-written; the user gets the path and the system's reason, not a traceback.
        click.echo(f"nbpack: error: {os_error_line(exc)}", err=True)
        sys.exit(1)


def os_error_line(exc: OSError) -> str:
    """An OSError as the CLI's one line: the path(s) it concerns and the system's reason."""
    reason = exc.strerror or one_line(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' → '.join(paths)}: {reason}" if paths else reason
