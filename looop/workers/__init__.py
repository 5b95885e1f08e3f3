"""The processes looop runs: agent CLIs in a pty, their sandboxes and contract, sensors, `_ run`."""
