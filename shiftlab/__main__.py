"""``python -m shiftlab``: the command line."""

from shiftlab.cli import main

main()
