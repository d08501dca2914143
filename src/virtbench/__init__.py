"""virtbench: measure and explain what virtualization costs a Linux server."""

__version__ = "0.1.0"
