"""One module per ``fingerbench`` subcommand.

Each module has ``add_parser(subparsers) -> ArgumentParser`` and ``run(args) -> int``
(the exit status). :data:`COMMANDS` lists them in the order ``--help`` shows them.
"""

COMMANDS = ("list", "check", "run", "metrics", "report", "compare", "interop", "synth", "identify")
