"""kwsd: a streaming keyword-spotting daemon for Raspberry Pi and other edge Linux devices."""

__version__ = "0.1.0"
