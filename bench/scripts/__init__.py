"""Stand-alone benchmark scripts (run with python -m bench.scripts.<name>)."""
