"""``python -m meanfield`` runs the CLI."""

from .cli import main

main()
