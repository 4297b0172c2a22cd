"""Exceptions that map to the CLI's exit statuses (docs/contracts.md)."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNDELIVERED = 75  # EX_TEMPFAIL: kwsd ran, but some detections never reached a sink
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h, what systemd and users expect


class KwsdError(Exception):
    """An error the user can act on; printed as one line, exit status 1."""

    exit_status = EXIT_FAILURE


class ConfigError(KwsdError):
    """Bad configuration; exit status 78."""

    exit_status = EXIT_CONFIG


class ModelError(KwsdError):
    """A model file that cannot be used (missing, corrupt, inconsistent metadata)."""


class AudioError(KwsdError):
    """A recording or device that cannot be read."""


class NoMicrophoneError(AudioError):
    """No input device: the CLI can fall back to the bundled sample."""


class UsageError(KwsdError):
    """Options that do not go together; exit status 2, as argparse's own usage errors."""

    exit_status = EXIT_USAGE
