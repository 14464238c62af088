"""Errors the project raises on purpose.

A `UserError` carries one polite sentence meant for the person who ran the command; the command tree's error
handler shows it ephemerally and logs nothing alarming. Anything else is a bug and gets an incident id.
"""

from __future__ import annotations


class AnchorshotError(Exception):
    """Base class for every error the project raises on purpose."""


class UserError(AnchorshotError):
    """A refusal with a message that can be shown to the user as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageRejected(UserError):
    """An uploaded image cannot be used as an anchor."""


class NoAnchor(UserError):
    """The channel (and its parent) has no anchor."""


class BudgetExceeded(UserError):
    """A hold would take the user (or the guild) past the limit."""


class NotAllowed(UserError):
    """The member lacks the permission the action needs."""


class ConfigError(AnchorshotError):
    """Settings are missing or malformed; the message is one line for the operator."""
