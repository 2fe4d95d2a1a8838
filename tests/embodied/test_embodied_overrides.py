"""The organisation's own figures win, are validated strictly, and are versionable rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonledger import contract as c
from carbonledger.embodied import (
    EmbodiedShare,
    HostEmbodied,
    embodied_for_tags,
    load_overrides,
    reservation_from_hardware,
    resolve_host,
)
from carbonledger.embodied.overrides import parse_overrides
from carbonledger.errors import ConfigError, EmbodiedOverridesError

HOUR_S = 3600.0
GOOD = """
version: 1
embodied:
  - instance_type: p4d.24xlarge
    provider: aws
    embodied_co2e_kg: 6000
    host_gpu_count: 8
    host_vcpus: 96
    source: "Vendor PCF 2025"
  - host_model: PowerEdge XE9680
    embodied_co2e_kg: 9000
    host_gpu_count: 8
    host_vcpus: 224
    source: "Dell PCF"
    relative_uncertainty: 0.2
  - gpu_model: NVIDIA H100 80GB HBM3
    embodied_co2e_kg: 164
    source: "NVIDIA HGX H100 PCF summary, 1,312 kg / 8"
"""


@pytest.fixture
def overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "embodied.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("CARBONLEDGER_EMBODIED_PATH", str(path))
    return path


def test_an_override_wins_over_the_shipped_instance_figure(overrides_file: Path) -> None:
    tags = {
        c.TAG_INSTANCE_TYPE: "p4d.24xlarge",
        c.TAG_CLOUD_PROVIDER: "aws",
        c.TAG_GPU_MODEL: "NVIDIA A100-SXM4-40GB",
        c.TAG_GPU_COUNT: "2",
        c.TAG_GPU_COUNT_HOST: "8",
    }
    share = embodied_for_tags(tags, 10 * HOUR_S)
    assert isinstance(share, EmbodiedShare)
    assert share.host.method == c.EMBODIED_OVERRIDE
    assert share.host.embodied_co2e_kg == 6000
    assert share.host.key == "override:instance:aws:p4d.24xlarge"
    assert share.embodied_co2e_kg == pytest.approx(6000 * 10 / (4 * 365 * 24) * 2 / 8)
    assert "Vendor PCF 2025" in share.host.source


def test_a_machine_model_override_matches_the_dmi_product_name(overrides_file: Path) -> None:
    tags = {
        c.TAG_HOST_MODEL: "poweredge  XE9680",
        c.TAG_GPU_MODEL: "NVIDIA H100 80GB HBM3",
        c.TAG_GPU_COUNT: "4",
        c.TAG_GPU_COUNT_HOST: "8",
    }
    share = embodied_for_tags(tags, HOUR_S)
    assert isinstance(share, EmbodiedShare)
    assert share.host.embodied_co2e_kg == 9000 and share.resource_share == 0.5
    assert share.range.relative_uncertainty == pytest.approx(0.2)


def test_a_gpu_model_override_replaces_the_study_card(overrides_file: Path) -> None:
    overrides = load_overrides(overrides_file)
    res = reservation_from_hardware(
        gpu_model="NVIDIA H100 80GB HBM3", gpu_count=8, gpu_count_host=8
    )
    host = resolve_host(res, overrides=overrides)  # type: ignore[arg-type]
    assert isinstance(host, HostEmbodied)
    gpu = next(p for p in host.parts if p.name.startswith("GPU"))
    assert (gpu.unit_kg, gpu.co2e_kg) == (164, 8 * 164)
    assert gpu.source.startswith("organisation:")


def test_rows_have_stable_keys_and_content_hashes(tmp_path: Path) -> None:
    first = parse_overrides(GOOD, tmp_path / "a.yaml")
    again = parse_overrides(GOOD, tmp_path / "b.yaml")
    changed = parse_overrides(GOOD.replace("6000", "6100"), tmp_path / "a.yaml")
    assert set(first.rows) == {
        "instance:aws:p4d.24xlarge",
        "host:poweredge xe9680",
        "gpu:h100 sxm 80gb",
    }
    key = "instance:aws:p4d.24xlarge"
    assert first.rows[key].content_hash == again.rows[key].content_hash
    assert first.rows[key].content_hash != changed.rows[key].content_hash
    gpu = "gpu:h100 sxm 80gb"
    assert first.rows[gpu].content_hash == changed.rows[gpu].content_hash


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("version: 2\nembodied: []\n", "version must be 1"),
        ("embodied: {}\nversion: 1\n", "must be a list"),
        ("version: 1\nembodied:\n  - {host_model: X, embodied_kg: 5, source: s}\n", "embodied_kg"),
        ("version: 1\nembodied:\n  - {host_model: X, embodied_co2e_kg: 5}\n", "source is missing"),
        ("version: 1\nembodied:\n  - {embodied_co2e_kg: 5, source: s}\n", "exactly one of"),
        (
            "version: 1\nembodied:\n  - {host_model: X, gpu_model: Y, embodied_co2e_kg: 5, "
            "source: s}\n",
            "exactly one of",
        ),
        (
            "version: 1\nembodied:\n  - {host_model: X, embodied_co2e_kg: -5, source: s}\n",
            "above 0",
        ),
        (
            "version: 1\nembodied:\n  - {instance_type: a, provider: ibm, embodied_co2e_kg: 5, "
            "source: s}\n",
            "provider must be one of",
        ),
        (
            "version: 1\nembodied:\n  - {gpu_model: L4, host_gpu_count: 1, embodied_co2e_kg: 5, "
            "source: s}\n",
            "one card",
        ),
        (
            "version: 1\nembodied:\n  - {host_model: X, embodied_co2e_kg: 5, source: s}\n"
            "  - {host_model: x, embodied_co2e_kg: 6, source: t}\n",
            "entries 1 and 2 both define host:x",
        ),
        ("version: 1\nembodied: [\n", "not valid YAML"),
    ],
)
def test_invalid_files_are_refused_with_the_entry_and_the_fix(
    tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(EmbodiedOverridesError, match=match) as info:
        parse_overrides(text, tmp_path / "bad.yaml")
    assert "CARBONLEDGER_EMBODIED_PATH" in str(info.value)
    assert isinstance(info.value, ConfigError)
    assert info.value.path == str(tmp_path / "bad.yaml")


def test_a_missing_file_is_an_error_not_silence(tmp_path: Path) -> None:
    with pytest.raises(EmbodiedOverridesError, match="cannot read"):
        load_overrides(tmp_path / "nope.yaml")


def test_an_edited_file_is_read_again(overrides_file: Path) -> None:
    assert load_overrides(overrides_file).rows["host:poweredge xe9680"].embodied_co2e_kg == 9000
    overrides_file.write_text(GOOD.replace("9000", "91000"))  # size differs too
    assert load_overrides(overrides_file).rows["host:poweredge xe9680"].embodied_co2e_kg == 91000
