"""The live provider (Electricity Maps API v3), against a fake HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from carbonledger.errors import LiveIntensityError
from carbonledger.intensity import Location, resolve_intensity
from carbonledger.intensity.live import fetch_live_intensity
from carbonledger.settings import Settings

TOKEN = "em-secret-token-7f3a9c"  # noqa: S105 - a fake token; must never leak


class FakeElectricityMaps:
    """A scriptable stand-in for ``/v3/carbon-intensity/latest``."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.value: Any = 123
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append((self.path, self.headers.get("auth-token")))
                try:
                    if fake.mode == "slow":
                        fake.release.wait(5)
                    if fake.mode == "401":
                        self._send(401, b'{"error": "unauthorized"}')
                    elif fake.mode == "malformed":
                        self._send(200, b"<html>not json{")
                    else:
                        zone = self.path.split("zone=")[-1]
                        body = {
                            "zone": zone,
                            "carbonIntensity": fake.value,
                            "datetime": "2026-11-23T00:00:00.000Z",
                            "isEstimated": True,
                        }
                        self._send(200, json.dumps(body).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # type: ignore[misc]
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v3"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "grid_zone": "DE",
            "live_intensity": True,
            "electricitymaps_token": TOKEN,
            "electricitymaps_url": self.base_url,
            "live_timeout_s": 2.0,
            "live_cache_ttl_s": 3600.0,
        }
        values.update(overrides)
        return Settings(**values)


@pytest.fixture
def fake_em(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeElectricityMaps]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeElectricityMaps()
    fake.thread.start()
    yield fake
    fake.release.set()
    fake.server.shutdown()
    fake.server.server_close()


def _assert_no_token(*texts: object) -> None:
    for text in texts:
        assert TOKEN not in str(text)


def test_success_uses_the_live_value_and_sends_the_token_in_the_header(
    fake_em: FakeElectricityMaps,
) -> None:
    factor = resolve_intensity(fake_em.settings())
    assert factor.intensity_g_per_kwh == 123.0
    assert (factor.source, factor.resolved_by, factor.zone) == (
        "electricity-maps-live",
        "live",
        "DE",
    )
    assert factor.year == 2026
    assert fake_em.requests == [("/v3/carbon-intensity/latest?zone=DE", TOKEN)]
    _assert_no_token(factor, factor.note)


def test_cloud_region_asks_for_the_regions_zone(fake_em: FakeElectricityMaps) -> None:
    settings = fake_em.settings(grid_zone=None)
    factor = resolve_intensity(
        settings, location=Location(cloud_provider="aws", cloud_region="eu-west-1")
    )
    assert (factor.source, factor.zone) == ("electricity-maps-live", "IE")
    assert fake_em.requests[0][0].endswith("zone=IE")


def test_timeout_falls_back_to_the_yearly_table_and_says_why(
    fake_em: FakeElectricityMaps, caplog: pytest.LogCaptureFixture
) -> None:
    fake_em.mode = "slow"
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        factor = resolve_intensity(fake_em.settings(live_timeout_s=0.2))
    assert time.monotonic() - start < 2.0
    assert factor.source == "electricity-maps-yearly"
    assert factor.resolved_by == "zone+live-fallback"
    assert factor.note and "no answer within 0.2 s" in factor.note
    assert "used the yearly table" in factor.note
    _assert_no_token(factor, caplog.text)


def test_http_401_falls_back_and_names_the_token_setting_not_the_token(
    fake_em: FakeElectricityMaps, caplog: pytest.LogCaptureFixture
) -> None:
    fake_em.mode = "401"
    with caplog.at_level(logging.DEBUG):
        factor = resolve_intensity(fake_em.settings())
    assert factor.resolved_by == "zone+live-fallback"
    assert "HTTP 401" in (factor.note or "")
    assert "CARBONLEDGER_ELECTRICITYMAPS_TOKEN" in (factor.note or "")
    assert "live intensity unavailable" in caplog.text  # the fallback is logged, not silent
    _assert_no_token(factor, caplog.text)


def test_malformed_json_falls_back(fake_em: FakeElectricityMaps) -> None:
    fake_em.mode = "malformed"
    factor = resolve_intensity(fake_em.settings())
    assert factor.source == "electricity-maps-yearly"
    assert "not JSON" in (factor.note or "")


@pytest.mark.parametrize("value", [None, "high", -5, True])
def test_invalid_intensity_value_falls_back(fake_em: FakeElectricityMaps, value: Any) -> None:
    fake_em.value = value
    factor = resolve_intensity(fake_em.settings())
    assert "no valid carbonIntensity" in (factor.note or "")


def test_cache_hit_makes_no_second_request(fake_em: FakeElectricityMaps) -> None:
    first = resolve_intensity(fake_em.settings())
    fake_em.value = 999  # a fresh request would see this
    second = resolve_intensity(fake_em.settings())
    assert len(fake_em.requests) == 1
    assert second.intensity_g_per_kwh == first.intensity_g_per_kwh == 123.0
    assert "cached" in (second.note or "")


def test_cache_expires_after_its_ttl(fake_em: FakeElectricityMaps) -> None:
    resolve_intensity(fake_em.settings(live_cache_ttl_s=0.05))
    time.sleep(0.1)
    fake_em.value = 222
    factor = resolve_intensity(fake_em.settings(live_cache_ttl_s=0.05))
    assert len(fake_em.requests) == 2
    assert factor.intensity_g_per_kwh == 222.0


def test_ttl_zero_disables_the_cache(fake_em: FakeElectricityMaps) -> None:
    resolve_intensity(fake_em.settings(live_cache_ttl_s=0))
    resolve_intensity(fake_em.settings(live_cache_ttl_s=0))
    assert len(fake_em.requests) == 2


def test_a_failure_is_remembered_so_it_costs_one_timeout(fake_em: FakeElectricityMaps) -> None:
    fake_em.mode = "slow"
    resolve_intensity(fake_em.settings(live_timeout_s=0.2))
    start = time.monotonic()
    factor = resolve_intensity(fake_em.settings(live_timeout_s=0.2))
    assert time.monotonic() - start < 0.15
    assert len(fake_em.requests) == 1
    assert "remembered" in (factor.note or "")


def test_live_off_or_token_missing_makes_no_request(fake_em: FakeElectricityMaps) -> None:
    off = resolve_intensity(fake_em.settings(live_intensity=False))
    assert off.resolved_by == "zone"
    no_token = resolve_intensity(fake_em.settings(electricitymaps_token=None))
    assert no_token.resolved_by == "zone+live-fallback"
    assert "CARBONLEDGER_ELECTRICITYMAPS_TOKEN is not set" in (no_token.note or "")
    assert fake_em.requests == []


def test_explicit_intensity_never_asks_the_live_provider(fake_em: FakeElectricityMaps) -> None:
    factor = resolve_intensity(fake_em.settings(intensity_g_per_kwh=50.0))
    assert factor.resolved_by == "explicit"
    assert fake_em.requests == []


def test_fetch_errors_never_contain_the_token(fake_em: FakeElectricityMaps) -> None:
    fake_em.mode = "401"
    with pytest.raises(LiveIntensityError) as info:
        fetch_live_intensity(
            "DE", base_url=fake_em.base_url, token=TOKEN, timeout_s=1.0, cache_ttl_s=0
        )
    _assert_no_token(
        str(info.value), repr(info.value), info.value.__cause__, info.value.__context__
    )


def test_refused_connection_is_a_live_error() -> None:
    with pytest.raises(LiveIntensityError, match="cannot connect"):
        fetch_live_intensity(
            "DE", base_url="http://127.0.0.1:9/v3", token=TOKEN, timeout_s=0.5, cache_ttl_s=0
        )


def test_non_http_url_is_refused() -> None:
    with pytest.raises(LiveIntensityError, match="http"):
        fetch_live_intensity("DE", base_url="file:///etc", token=TOKEN, timeout_s=1, cache_ttl_s=0)
