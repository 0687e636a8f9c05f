"""The ``fingerbench`` command line (also ``python -m bench``).

One module per subcommand in this package, each with ``add_parser(subparsers) ->
ArgumentParser`` and ``run(args) -> int`` (the exit status); :data:`COMMANDS` lists them
in the order ``--help`` shows them. A module is named after its command, except where
:data:`MODULES` says otherwise (``import`` is a Python keyword). Shared option groups and types: :mod:`.execution`,
:mod:`.argtypes`, :mod:`.helpstyle`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Sequence

from bench.cli.helpstyle import HelpFormatter

COMMANDS = ("list", "check", "run", "import", "metrics", "report", "compare", "interop", "synth", "identify")
#: The module of a command whose name cannot be a module's.
MODULES = {"import": "import_scores"}

log = logging.getLogger("fingerbench")

#: Exit status of every command.
EXIT_DONE, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EXIT_CODES = """\
Exit status (every command):
  0  done
  1  the run, a check or a regression gate failed
  2  usage error or bad input (unknown name, missing file, a folder that is no run)
"""

EPILOG = """\
Examples:
  fingerbench list
  fingerbench run --dataset fvc2002-db1-b --data-root ~/data -e mindtct -m bozorth3
  fingerbench run --dataset folder --dataset-path ./prints --dataset-param dpi=500 \\
                  -e ./my_extractor.py:MyExtractor -m bozorth3
  fingerbench import scores.csv -d fvc2002-db1-b --name sdk-x --higher-is-better
  fingerbench metrics runs/fvc2002-db1-b/fvc/mindtct+bozorth3
  fingerbench report runs/fvc2002-db1-b/*/* -o report
  fingerbench compare runs-main/ runs/ --fail-if eer:+0.5pp

""" + EXIT_CODES


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    from bench import __version__

    parser = argparse.ArgumentParser(
        prog="fingerbench",
        description="Benchmark fingerprint minutiae extractors and matchers on public datasets "
                    "under the FVC protocols, with every score stored for recomputation.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fingerbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers = {}
    for name in COMMANDS:
        module = importlib.import_module(f"bench.cli.{MODULES.get(name, name)}")
        p = module.add_parser(sub)
        p.formatter_class = HelpFormatter  # one help style for every command
        p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
        p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
        handlers[p.prog.split()[-1]] = module.run
    return parser, handlers


#: The loggers of this project; other libraries' INFO messages (fontTools subsetting the fonts
#: of a PDF figure, for one) are shown only with -vv.
OWN_LOGGERS = ("fingerbench", "bench", "extractors")


def _setup_logging(args: argparse.Namespace) -> None:
    if logging.root.handlers:  # logging is configured already (by an embedding program or a test runner)
        return
    debug = getattr(args, "verbose", 0) > 1
    level = logging.WARNING if getattr(args, "quiet", False) else (logging.DEBUG if debug else logging.INFO)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args)
    from bench.datasets.base import DatasetError
    from bench.protocols import ProtocolError
    from bench.plugins.registry import PluginError
    from bench.store import RunDirError

    try:
        status = handlers[args.command](args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return status
    except (DatasetError, ProtocolError, PluginError, RunDirError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (``fingerbench metrics --json | head``): not a fault of ours;
        # send what is still buffered nowhere so that the interpreter's final flush is quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_DONE
    except KeyboardInterrupt:
        log.error("interrupted; results computed so far are saved: run the same command again to resume")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
