"""``python -m maxgate`` runs the CLI."""

from maxgate.cli import main

main()
