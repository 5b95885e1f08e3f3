"""Allow `python -m looop`."""

from looop.cli.entry import main

main()
