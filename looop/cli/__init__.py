"""The command line: the entry point, the click commands, the manual."""
