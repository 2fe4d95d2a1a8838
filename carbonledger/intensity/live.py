"""Live grid intensity from the Electricity Maps API v3, with a timeout and an in-process cache.

``GET {base}/carbon-intensity/latest?zone=Z`` with the token in the ``auth-token`` header.
Answers are cached per (base URL, zone) for ``live_cache_ttl_s``; a failure is remembered for
``min(ttl, 60 s)`` so a dead endpoint does not cost a timeout on every call. Errors become
:class:`~carbonledger.errors.LiveIntensityError` whose message never contains the token.
Only the standard library is used (urllib, imported when a request is made).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from pydantic import SecretStr

from carbonledger.errors import LiveIntensityError

FAILURE_RETRY_S = 60.0  # how long a failure is remembered (capped by the cache TTL)
MAX_RESPONSE_BYTES = 1 << 20

_cache: dict[tuple[str, str], tuple[float, LiveReading | str]] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LiveReading:
    """One answer of the live provider.

    Attributes:
        zone: the Electricity Maps zone asked for.
        intensity_g_per_kwh: the zone's latest carbon intensity (gCO2e/kWh, lifecycle).
        datetime: the hour the figure is for (ISO 8601, as the API sends it), when given.
        is_estimated: whether Electricity Maps marks the figure as estimated, when given.
        cached: True when this reading came from the in-process cache.
    """

    zone: str
    intensity_g_per_kwh: float
    datetime: str | None = None
    is_estimated: bool | None = None
    cached: bool = False

    @property
    def year(self) -> int | None:
        """The year of ``datetime``, when it parses."""
        if self.datetime and len(self.datetime) >= 4 and self.datetime[:4].isdigit():
            return int(self.datetime[:4])
        return None


def clear_live_cache() -> None:
    """Forget every cached answer and failure."""
    with _lock:
        _cache.clear()


def fetch_live_intensity(
    zone: str,
    *,
    base_url: str,
    token: SecretStr | str,
    timeout_s: float,
    cache_ttl_s: float,
) -> LiveReading:
    """Return the zone's latest intensity, from the cache when fresh.

    Args:
        zone: Electricity Maps zone, e.g. ``DE``.
        base_url: API base, e.g. ``https://api.electricitymap.org/v3`` (http or https only).
        token: the API token (sent in the ``auth-token`` header, never logged).
        timeout_s: socket timeout of the request (connect and each read).
        cache_ttl_s: how long an answer is reused (0 turns the cache off).

    Raises:
        LiveIntensityError: timeout, connection failure, HTTP error, or a malformed answer.
    """
    key = (base_url.rstrip("/"), zone)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        value = hit[1]
        if isinstance(value, str):
            raise LiveIntensityError(f"{value} (remembered; retried after the back-off)")
        return LiveReading(
            value.zone, value.intensity_g_per_kwh, value.datetime, value.is_estimated, True
        )
    secret = token.get_secret_value() if isinstance(token, SecretStr) else token
    try:
        reading = _request(key[0], zone, secret, timeout_s)
    except LiveIntensityError as exc:
        if cache_ttl_s > 0:
            with _lock:
                _cache[key] = (time.monotonic() + min(cache_ttl_s, FAILURE_RETRY_S), str(exc))
        raise
    if cache_ttl_s > 0:
        with _lock:
            _cache[key] = (time.monotonic() + cache_ttl_s, reading)
    return reading


def _request(base_url: str, zone: str, token: str, timeout_s: float) -> LiveReading:
    import urllib.error  # here: urllib.request (http.client) only when the live API is on
    import urllib.parse
    import urllib.request

    scheme = urllib.parse.urlsplit(base_url).scheme
    if scheme not in ("http", "https"):
        raise LiveIntensityError(
            f"CARBONLEDGER_ELECTRICITYMAPS_URL must be an http(s) URL, not {scheme or 'empty'!r}"
        )
    url = f"{base_url}/carbon-intensity/latest?{urllib.parse.urlencode({'zone': zone})}"
    request = urllib.request.Request(
        url, headers={"auth-token": token, "Accept": "application/json"}, method="GET"
    )
    where = f"Electricity Maps ({base_url}) for zone {zone}"
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        hint = (
            "the token was rejected: check CARBONLEDGER_ELECTRICITYMAPS_TOKEN"
            if exc.code in (401, 403)
            else "the provider refused the request"
        )
        raise LiveIntensityError(f"{where}: HTTP {exc.code}; {hint}") from None
    except TimeoutError:
        raise LiveIntensityError(
            f"{where}: no answer within {timeout_s:g} s (CARBONLEDGER_LIVE_TIMEOUT_S)"
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise LiveIntensityError(
                f"{where}: no answer within {timeout_s:g} s (CARBONLEDGER_LIVE_TIMEOUT_S)"
            ) from None
        raise LiveIntensityError(f"{where}: cannot connect ({type(reason).__name__})") from None
    except OSError as exc:
        raise LiveIntensityError(f"{where}: connection failed ({type(exc).__name__})") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise LiveIntensityError(f"{where}: answer larger than {MAX_RESPONSE_BYTES} bytes")
    return _parse(body, zone, where)


def _parse(body: bytes, zone: str, where: str) -> LiveReading:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LiveIntensityError(f"{where}: the answer is not JSON") from None
    if not isinstance(payload, dict):
        raise LiveIntensityError(f"{where}: the answer is not a JSON object")
    value = payload.get("carbonIntensity")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise LiveIntensityError(f"{where}: no valid carbonIntensity in the answer")
    when = payload.get("datetime")
    estimated = payload.get("isEstimated")
    return LiveReading(
        zone=zone,
        intensity_g_per_kwh=float(value),
        datetime=when if isinstance(when, str) else None,
        is_estimated=estimated if isinstance(estimated, bool) else None,
    )
