"""The ``artfs`` command line: argument parsing and output only."""
