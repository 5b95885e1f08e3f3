"""Allow `python -m looop`."""

from looop.cli import main

main()
