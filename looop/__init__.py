"""looop: a tiny, portable control plane for agent-driven work."""

__version__ = "0.1.0"
