"""Errors that the CLI reports as a message (exit code 2) instead of a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (a file, an option, a codebook): say what and how to fix it."""

    exit_code = 2
