"""Errors that the command line reports as one line and exit status 2 (bad input)."""


class BisepError(Exception):
    """A problem with what the user gave us (a file, a prompt, a config); never a bug in bisep."""


class AudioError(BisepError):
    """An audio file or array that cannot be used; the message names the file and the problem."""


class ConfigError(BisepError):
    """A preset or override that does not validate."""


class SourceUnavailable(BisepError):
    """A family of sounds that cannot be rendered on this machine (missing soundfont or speech engine)."""
