"""A metered run records what it reserved, and the ETL's function reads it back as a share."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger import contract as c
from carbonledger.embodied import EmbodiedShare, embodied_for_tags


def test_a_run_on_an_aws_gpu_instance_carries_its_reservation(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from carbonledger.measure import amd, hardware, host, nvml
    from carbonledger.settings import get_settings

    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "product_name").write_text("p4d.24xlarge\n")
    monkeypatch.setenv("CARBONLEDGER_DMI_ROOT", str(dmi))
    monkeypatch.setenv("CARBONLEDGER_CLOUD_PROVIDER", "aws")
    get_settings.cache_clear()
    host.read_dmi.cache_clear()
    monkeypatch.setattr(nvml, "nvml_init", lambda: False)
    monkeypatch.setattr(amd, "amd_init", lambda: False)
    real = hardware.describe_hardware()
    monkeypatch.setattr(plugin, "hardware", lambda: real)
    with mlflow.start_run() as run:
        pass
    tags = read_run(mlflow_uri, run.info.run_id).data.tags
    assert tags[c.TAG_INSTANCE_TYPE] == "p4d.24xlarge"
    assert tags[c.TAG_INSTANCE_TYPE_SOURCE] == "dmi"
    assert tags[c.TAG_GPU_COUNT_HOST] == "0"
    assert int(tags[c.TAG_CPU_COUNT_USED]) >= 1
    # a CPU job on that host: charged by vCPUs of CCF's p4d host (96)
    share = embodied_for_tags({**tags, c.TAG_CPU_COUNT_USED: "12"}, 3600.0)
    assert isinstance(share, EmbodiedShare)
    assert (share.resource, share.resources_reserved, share.resources_host) == ("vcpu", 12, 96)
