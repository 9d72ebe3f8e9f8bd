"""Settings and logging set-up: the one place configuration is read."""

from config.logging import configure_logging
from config.settings import MetadataFallback, Quality, Settings

__all__ = ["MetadataFallback", "Quality", "Settings", "configure_logging"]
