"""Anchorshot: consistent-character video shots for Discord."""

__version__ = "0.1.0"
