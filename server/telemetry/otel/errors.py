"""Why OpenTelemetry could not be set up: the server then serves without it, and says so on stderr."""

__all__ = ["OtelUnavailable"]


class OtelUnavailable(Exception):
    """OpenTelemetry was asked for (`OTEL_*`) but cannot run: its packages are missing, or the variables name an
    exporter or protocol this server cannot use. The message says what to install or change."""
