"""Allow `python -m looop`."""

from looop.entry import main

main()
