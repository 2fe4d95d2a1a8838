"""The one exception tree of carbonledger.

Every error raised on purpose by carbonledger is a ``CarbonLedgerError``. Messages say
what to do about the problem, and never contain secrets.
"""

from __future__ import annotations


class CarbonLedgerError(Exception):
    """Base class of every carbonledger error."""


class ConfigError(CarbonLedgerError):
    """A setting is missing, malformed or contradictory."""


class MeasurementError(CarbonLedgerError):
    """Energy could not be measured by the requested method."""


class NvmlError(MeasurementError):
    """NVML failed; ``code`` is the NVML return code when known."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NvmlNotSupportedError(NvmlError):
    """The GPU or driver does not support the requested NVML query."""


class AmdSmiError(MeasurementError):
    """amdsmi (AMD GPUs) failed; ``code`` is the amdsmi status code when known."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class AmdSmiNotSupportedError(AmdSmiError):
    """The AMD GPU or driver does not support the requested amdsmi query."""


class RaplError(MeasurementError):
    """The RAPL powercap interface cannot be read."""


class RaplPermissionError(RaplError):
    """RAPL ``energy_uj`` files exist but are not readable (root-only since Linux 5.10)."""


class IntensityError(CarbonLedgerError):
    """A grid intensity or PUE could not be resolved."""


class UnknownLocationError(IntensityError):
    """An unknown grid zone, cloud region or country; ``suggestions`` lists close valid names."""

    def __init__(self, message: str, *, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class LiveIntensityError(IntensityError):
    """The live intensity provider failed (timeout, HTTP error, bad payload)."""


class UnknownHardwareError(ConfigError):
    """An unknown GPU or CPU model name; ``suggestions`` lists close known names."""

    def __init__(self, message: str, *, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class EmbodiedError(CarbonLedgerError):
    """An embodied-emissions figure cannot be computed from the values given."""


class EmbodiedOverridesError(ConfigError):
    """The organisation's embodied figures file is invalid; ``path`` and ``entry`` say where."""

    def __init__(self, message: str, *, path: str | None = None, entry: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.entry = entry


class PluginError(CarbonLedgerError):
    """The MLflow plugin could not do what was asked (never raised into training code)."""


class BudgetExceededError(PluginError):
    """A run was refused because its model's carbon budget is exceeded (policy ``block``)."""


class LedgerError(CarbonLedgerError):
    """The ledger database is unreachable, outdated or inconsistent."""


class EtlError(CarbonLedgerError):
    """The ETL job failed; the ledger is left as it was before the failed load."""


class EtlLockedError(EtlError):
    """Another ETL process holds the ledger's load lock."""


class StoreReadError(EtlError):
    """An MLflow database cannot be read directly: not an MLflow store, or its schema is too old."""


class ReportingError(CarbonLedgerError):
    """A report or app query got bad input (period, format, filter)."""


def first_line(exc: BaseException) -> str:
    """The first line of a (driver) error, for a one-line message: its cause's, when wrapped."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
