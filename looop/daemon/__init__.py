"""The pulse (the `up` process): its supervision tree, fleet, recovery and socket server."""
