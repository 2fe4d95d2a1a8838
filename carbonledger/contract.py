"""The public contract of carbonledger: components, MLflow names, units and defaults.

Every ``carbon/*`` metric and ``carbon.*`` tag that the plugin, the inference meter, the ETL,
budgets and reporting read or write is spelled here once; so are the unit constants and the
default alert thresholds. Other modules import these names; a test walks the package with
``ast`` and fails when a module outside this one spells a ``carbon/`` metric, a ``carbon.``
tag or a J-per-kWh literal. docs/plugin.md and docs/inference.md document every name (a test
checks that too). Importing this module imports nothing else.
"""

from __future__ import annotations

from typing import Final

# --- components and units ----------------------------------------------------------------
COMPONENTS: Final = ("gpu", "cpu", "ram")
"""The device components a metered run's IT energy is made of."""
MACHINE: Final = "machine"
"""Component of a whole-machine estimate (an unmetered run estimated from its duration)."""

J_PER_KWH: Final = 3_600_000.0
"""Joules in one kilowatt-hour."""
G_PER_KG: Final = 1000.0
"""Grams in one kilogram (intensities are gCO2e/kWh, masses kg CO2e)."""
WH_PER_KWH: Final = 1000.0
"""Watt-hours in one kilowatt-hour (per-request figures are in Wh)."""
MS_PER_S: Final = 1000.0
"""Milliseconds in one second (MLflow timestamps are epoch milliseconds)."""
S_PER_HOUR: Final = 3600.0
"""Seconds in one hour."""


def kwh_from_j(energy_j: float) -> float:
    """Joules to kilowatt-hours."""
    return energy_j / J_PER_KWH


def j_from_kwh(energy_kwh: float) -> float:
    """Kilowatt-hours to joules."""
    return energy_kwh * J_PER_KWH


def average_power_w(energy_kwh: float, duration_s: float) -> float:
    """Average power in watts of ``energy_kwh`` spent over ``duration_s`` (0 for no time)."""
    return energy_kwh * J_PER_KWH / duration_s if duration_s > 0 else 0.0


def energy_kwh_at(power_w: float, duration_s: float) -> float:
    """Energy in kWh of ``power_w`` drawn for ``duration_s``."""
    return power_w * duration_s / J_PER_KWH


ESTIMATE_MARKER: Final = "estimate"
"""Every estimation method's name contains this word (``ram-w-per-gb-estimate``...)."""


def method_is_estimate(method: str | None) -> bool:
    """Whether a measurement method (a ``carbon.methods`` value) is an estimate."""
    return ESTIMATE_MARKER in (method or "")


def parse_methods(value: str | None) -> dict[str, str]:
    """``carbon.methods`` (``gpu=nvml-energy-counter;cpu=rapl``) as component -> method."""
    return dict(part.split("=", 1) for part in (value or "").split(";") if "=" in part)


def format_methods(methods: dict[str, str]) -> str:
    """Component -> method as the ``carbon.methods`` tag value (sorted by component)."""
    return ";".join(f"{c}={m}" for c, m in sorted(methods.items()))


# --- measurement methods (the values of the carbon.methods tag; docs/measure.md) ----------
METHOD_NVML_COUNTER: Final = "nvml-energy-counter"
"""NVIDIA Volta+: ``nvmlDeviceGetTotalEnergyConsumption`` deltas of whole devices."""
METHOD_NVML_POWER: Final = "nvml-power-integration"
"""NVIDIA without the counter (pre-Volta): ``nvmlDeviceGetPowerUsage`` integrated at >= 10 Hz."""
METHOD_NVML_PROCESS_SHARE: Final = "nvml-process-share"
"""A shared NVIDIA GPU split by per-process SM utilisation samples (an attribution)."""
METHOD_NVML_EVEN_SHARE: Final = "nvml-even-share"
"""A shared NVIDIA GPU split evenly among the processes on it (driver without per-process
utilisation samples)."""
METHOD_NVML_MIG_SHARE: Final = "nvml-mig-share"
"""A MIG instance: the GPU's energy times the instance's share of its compute slices."""
METHOD_AMDSMI_COUNTER: Final = "amdsmi-energy-counter"
"""AMD Instinct/Radeon: ``amdsmi_get_energy_count`` deltas x counter resolution."""
METHOD_AMDSMI_POWER: Final = "amdsmi-power-integration"
"""AMD without a usable energy counter: socket power integrated at >= 10 Hz."""
METHOD_AMDSMI_EVEN_SHARE: Final = "amdsmi-even-share"
"""An AMD GPU metered by several processes, split evenly among them (amdsmi has no
per-process utilisation samples comparable to NVML's)."""
METHOD_SHORT_WINDOW: Final = "short-window-power-interpolation"
"""A window shorter than the energy counter's update period: last power reading x duration."""
METHOD_RAPL: Final = "rapl"
METHOD_CPU_ESTIMATE: Final = "tdp-utilisation-estimate"
METHOD_RAM_RAPL: Final = "rapl-dram"
METHOD_RAM_ESTIMATE: Final = "ram-w-per-gb-estimate"
MEASURED_METHODS: Final = frozenset(
    {
        METHOD_NVML_COUNTER,
        METHOD_NVML_POWER,
        METHOD_NVML_PROCESS_SHARE,
        METHOD_NVML_EVEN_SHARE,
        METHOD_NVML_MIG_SHARE,
        METHOD_AMDSMI_COUNTER,
        METHOD_AMDSMI_POWER,
        METHOD_AMDSMI_EVEN_SHARE,
        METHOD_SHORT_WINDOW,
        METHOD_RAPL,
        METHOD_RAM_RAPL,
    }
)
"""Methods whose energy is read from hardware (shares split a measured device figure)."""

# --- training-run metrics (cumulative; docs/plugin.md) -----------------------------------
METRIC_PREFIX: Final = "carbon/"
M_ENERGY_KWH: Final = "carbon/energy_kwh"
M_GPU_ENERGY_KWH: Final = "carbon/gpu_energy_kwh"
M_CPU_ENERGY_KWH: Final = "carbon/cpu_energy_kwh"
M_RAM_ENERGY_KWH: Final = "carbon/ram_energy_kwh"
M_COMPONENT_ENERGY_KWH: Final = {
    "gpu": M_GPU_ENERGY_KWH,
    "cpu": M_CPU_ENERGY_KWH,
    "ram": M_RAM_ENERGY_KWH,
}
M_PUE: Final = "carbon/pue"
M_FACILITY_ENERGY_KWH: Final = "carbon/facility_energy_kwh"
M_INTENSITY_G_PER_KWH: Final = "carbon/intensity_g_per_kwh"
M_CO2E_KG: Final = "carbon/co2e_kg"
M_DURATION_S: Final = "carbon/duration_s"
M_AVG_POWER_W: Final = "carbon/avg_power_w"
M_PEAK_POWER_W: Final = "carbon/peak_power_w"
M_GPU_REMAINDER_KWH: Final = "carbon/gpu_remainder_kwh"
"""This run's part of its shared GPUs' remainder: device energy no metered run was charged
(idle time, unmetered processes); reported beside the GPU energy, never inside it. A device's
remainder is split over the metered processes on it, so a sum over runs counts it once."""
M_HEARTBEAT_MS: Final = "carbon/heartbeat_ms"
"""Epoch ms of the last flush: how the ETL finds runs that changed while still running."""
TOTAL_METRICS: Final = (
    M_ENERGY_KWH,
    M_GPU_ENERGY_KWH,
    M_CPU_ENERGY_KWH,
    M_RAM_ENERGY_KWH,
    M_PUE,
    M_FACILITY_ENERGY_KWH,
    M_INTENSITY_G_PER_KWH,
    M_CO2E_KG,
    M_DURATION_S,
    M_AVG_POWER_W,
    M_PEAK_POWER_W,
)
"""The totals every metered run carries (besides the heartbeat)."""
ENERGY_METRICS: Final = (M_GPU_ENERGY_KWH, M_CPU_ENERGY_KWH, M_RAM_ENERGY_KWH, M_ENERGY_KWH)
"""Any of these on a run means the plugin (or a compatible tool) metered it."""
POWER_METRICS: Final = (M_AVG_POWER_W, M_PEAK_POWER_W)

# Distributed runs: each node leader logs its own totals under carbon/node/<node_id>/<field>.
NODE_PREFIX: Final = "carbon/node/"
NODE_FIELDS: Final = (
    "energy_kwh",
    "gpu_energy_kwh",
    "cpu_energy_kwh",
    "ram_energy_kwh",
    "facility_energy_kwh",
    "co2e_kg",
    "duration_s",
    "avg_power_w",
    "peak_power_w",
    "flush_seq",
)
NODE_FIELD_METRICS: Final = {
    "energy_kwh": M_ENERGY_KWH,
    "gpu_energy_kwh": M_GPU_ENERGY_KWH,
    "cpu_energy_kwh": M_CPU_ENERGY_KWH,
    "ram_energy_kwh": M_RAM_ENERGY_KWH,
    "facility_energy_kwh": M_FACILITY_ENERGY_KWH,
    "co2e_kg": M_CO2E_KG,
    "duration_s": M_DURATION_S,
    "avg_power_w": M_AVG_POWER_W,
    "peak_power_w": M_PEAK_POWER_W,
}
"""The run total each node field stands for (every NODE_FIELDS entry but ``flush_seq``)."""


def node_metric(node_id: str, field: str) -> str:
    """The metric one node of a distributed run logs for ``field`` (one of NODE_FIELDS)."""
    return f"{NODE_PREFIX}{node_id}/{field}"


def metric_filter(metric: str) -> str:
    """An MLflow ``search_runs`` filter operand for a metric name (backquoted)."""
    return f"metrics.`{metric}`"


# --- inference-run metrics (per window; docs/inference.md) -------------------------------
INFERENCE_PREFIX: Final = "carbon/inference/"
W_REQUESTS: Final = "carbon/inference/requests"
W_ROWS: Final = "carbon/inference/rows"
W_ERRORS: Final = "carbon/inference/errors"
W_WINDOW_S: Final = "carbon/inference/window_s"
W_BUSY_S: Final = "carbon/inference/busy_s"
W_HOSTED_S: Final = "carbon/inference/hosted_s"
W_GPU_ENERGY_KWH: Final = "carbon/inference/gpu_energy_kwh"
W_CPU_ENERGY_KWH: Final = "carbon/inference/cpu_energy_kwh"
W_RAM_ENERGY_KWH: Final = "carbon/inference/ram_energy_kwh"
W_COMPONENT_ENERGY_KWH: Final = {
    "gpu": W_GPU_ENERGY_KWH,
    "cpu": W_CPU_ENERGY_KWH,
    "ram": W_RAM_ENERGY_KWH,
}
W_ENERGY_KWH: Final = "carbon/inference/energy_kwh"
W_ACTIVE_ENERGY_KWH: Final = "carbon/inference/active_energy_kwh"
W_IDLE_ENERGY_KWH: Final = "carbon/inference/idle_energy_kwh"
W_PUE: Final = "carbon/inference/pue"
W_FACILITY_ENERGY_KWH: Final = "carbon/inference/facility_energy_kwh"
W_INTENSITY_G_PER_KWH: Final = "carbon/inference/intensity_g_per_kwh"
W_CO2E_KG: Final = "carbon/inference/co2e_kg"
W_WH_PER_REQUEST: Final = "carbon/inference/wh_per_request"
W_ACTIVE_WH_PER_REQUEST: Final = "carbon/inference/active_wh_per_request"
W_CO2E_G_PER_REQUEST: Final = "carbon/inference/co2e_g_per_request"
W_LATENCY_P50_MS: Final = "carbon/inference/latency_p50_ms"
W_LATENCY_P95_MS: Final = "carbon/inference/latency_p95_ms"
W_LATENCY_P99_MS: Final = "carbon/inference/latency_p99_ms"
W_LATENCY_MS: Final = {50.0: W_LATENCY_P50_MS, 95.0: W_LATENCY_P95_MS, 99.0: W_LATENCY_P99_MS}
W_IDLE_POWER_W: Final = "carbon/inference/idle_power_w"
WINDOW_METRICS: Final = (
    W_REQUESTS,
    W_ROWS,
    W_ERRORS,
    W_WINDOW_S,
    W_BUSY_S,
    W_HOSTED_S,
    W_GPU_ENERGY_KWH,
    W_CPU_ENERGY_KWH,
    W_RAM_ENERGY_KWH,
    W_ENERGY_KWH,
    W_ACTIVE_ENERGY_KWH,
    W_IDLE_ENERGY_KWH,
    W_PUE,
    W_FACILITY_ENERGY_KWH,
    W_INTENSITY_G_PER_KWH,
    W_CO2E_KG,
    W_WH_PER_REQUEST,
    W_ACTIVE_WH_PER_REQUEST,
    W_CO2E_G_PER_REQUEST,
    W_LATENCY_P50_MS,
    W_LATENCY_P95_MS,
    W_LATENCY_P99_MS,
    W_IDLE_POWER_W,
)
"""Every per-window metric of an inference run."""
W_REQUESTS_TOTAL: Final = "carbon/inference/requests_total"
W_ROWS_TOTAL: Final = "carbon/inference/rows_total"
W_WINDOWS_TOTAL: Final = "carbon/inference/windows_total"
WINDOW_TOTAL_METRICS: Final = (W_REQUESTS_TOTAL, W_ROWS_TOTAL, W_WINDOWS_TOTAL)

# --- tags (docs/plugin.md) ---------------------------------------------------------------
TAG_PLUGIN_VERSION: Final = "carbon.plugin_version"
TAG_METERED: Final = "carbon.metered"
TAG_UNMETERED_REASON: Final = "carbon.unmetered_reason"
TAG_STATUS: Final = "carbon.status"
"""``running`` while flushing, ``complete`` after the final flush."""
TAG_MEASURED: Final = "carbon.measured"
TAG_METHODS: Final = "carbon.methods"
TAG_ATTRIBUTION: Final = "carbon.attribution"
TAG_NODE_COUNT: Final = "carbon.node_count"
TAG_GPU_MODEL: Final = "carbon.gpu_model"
TAG_GPU_COUNT: Final = "carbon.gpu_count"
TAG_CPU_MODEL: Final = "carbon.cpu_model"
TAG_CPU_COUNT: Final = "carbon.cpu_count"
TAG_RAM_GB: Final = "carbon.ram_gb"
TAG_COUNTRY: Final = "carbon.country"
TAG_CLOUD_PROVIDER: Final = "carbon.cloud_provider"
TAG_CLOUD_REGION: Final = "carbon.cloud_region"
TAG_GRID_ZONE: Final = "carbon.grid_zone"
TAG_INTENSITY_SOURCE: Final = "carbon.intensity_source"
TAG_INTENSITY_RESOLVED_BY: Final = "carbon.intensity_resolved_by"
TAG_PUE_SOURCE: Final = "carbon.pue_source"
TAG_TEAM: Final = "carbon.team"
TAG_MODEL_NAME: Final = "carbon.model_name"
TAG_KIND: Final = "carbon.kind"
"""``inference`` on the meter's runs (default, unset: a training run)."""
TAG_SYNTHETIC: Final = "carbon.synthetic"
# inference runs
TAG_MODEL_VERSION: Final = "carbon.model_version"
TAG_WINDOW_S: Final = "carbon.window_s"
TAG_INFERENCE_METER: Final = "carbon.inference_meter"
TAG_INFERENCE_HOST: Final = "carbon.inference_host"
TAG_IDLE_METHOD: Final = "carbon.idle_method"
# budget status on registered models (written by budgets check / the ETL), and on runs
TAG_BUDGET_STATUS: Final = "carbon.budget_status"
TAG_BUDGET_USED_PCT: Final = "carbon.budget_used_pct"
TAG_BUDGET_USED_CO2E_KG: Final = "carbon.budget_used_co2e_kg"
TAG_BUDGET_LIMIT_CO2E_KG: Final = "carbon.budget_limit_co2e_kg"
TAG_BUDGET_PROJECTION: Final = "carbon.budget_projection"
TAG_BUDGET_ORIGIN: Final = "carbon.budget_origin"
TAG_BUDGET_WARNING: Final = "carbon.budget_warning"
TAG_BUDGET_BLOCKED: Final = "carbon.budget_blocked"

HARDWARE_TAGS: Final = (TAG_GPU_MODEL, TAG_GPU_COUNT, TAG_CPU_MODEL, TAG_CPU_COUNT, TAG_RAM_GB)
LOCATION_TAGS: Final = (TAG_COUNTRY, TAG_CLOUD_PROVIDER, TAG_CLOUD_REGION, TAG_GRID_ZONE)

# MLflow's own tags the ledger reads.
MLFLOW_PARENT_RUN_ID: Final = "mlflow.parentRunId"
# Plain team tag accepted besides carbon.team (on runs and experiments).
TAG_TEAM_PLAIN: Final = "team"

STATUS_RUNNING: Final = "running"
STATUS_COMPLETE: Final = "complete"
KIND_TRAINING: Final = "training"
KIND_INFERENCE: Final = "inference"
KIND_ESTIMATE: Final = "estimate"
RUN_KINDS: Final = (KIND_TRAINING, KIND_INFERENCE, KIND_ESTIMATE)
UNMETERED_AFTER_THE_FACT: Final = "created-after-the-fact"
"""``carbon.unmetered_reason`` of a run created with a start time in the past (GridSearch)."""

# --- what a run reserved (docs/plugin.md "Host and reservation tags") --------------------
TAG_GPU_COUNT_HOST: Final = "carbon.gpu_count_host"
"""GPUs present on the host (every GPU the OS shows, whatever ``CUDA_VISIBLE_DEVICES`` says);
``carbon.gpu_count`` is the GPUs the run used (the visible ones)."""
TAG_CPU_COUNT_USED: Final = "carbon.cpu_count_used"
"""Logical CPUs the run may use (CPU affinity, capped by a cgroup CPU quota);
``carbon.cpu_count`` is the logical CPUs of the host."""
TAG_INSTANCE_TYPE: Final = "carbon.instance_type"
"""Cloud instance type (``p4d.24xlarge``), from DMI ``product_name`` (AWS) or the setting."""
TAG_INSTANCE_TYPE_SOURCE: Final = "carbon.instance_type_source"
"""Where ``carbon.instance_type`` came from: ``dmi`` or ``setting``."""
TAG_HOST_MODEL: Final = "carbon.host_model"
"""The machine's model (DMI ``product_name``, e.g. ``PowerEdge XE9680``) when it is not a
cloud instance type; organisation overrides can match it."""
RESERVATION_TAGS: Final = (
    TAG_GPU_COUNT_HOST,
    TAG_CPU_COUNT_USED,
    TAG_INSTANCE_TYPE,
    TAG_INSTANCE_TYPE_SOURCE,
    TAG_HOST_MODEL,
)
INSTANCE_TYPE_FROM_DMI: Final = "dmi"
INSTANCE_TYPE_FROM_SETTING: Final = "setting"

# --- embodied emissions (Scope 3; docs/methodology.md "Embodied emissions") --------------
EMBODIED_CCF_INSTANCE: Final = "ccf-instance"
"""Host total of a cloud instance type from Cloud Carbon Footprint's per-instance table."""
EMBODIED_COMPONENTS: Final = "components"
"""Host total built from its parts: CCF's component model, GPU cards from ADEME/Hubblo."""
EMBODIED_OVERRIDE: Final = "organisation-override"
"""A figure from the organisation's own file (``CARBONLEDGER_EMBODIED_PATH``)."""
EMBODIED_METHODS: Final = (EMBODIED_CCF_INSTANCE, EMBODIED_COMPONENTS, EMBODIED_OVERRIDE)
RESOURCE_GPU: Final = "gpu"
RESOURCE_VCPU: Final = "vcpu"
DEFAULT_EMBODIED_LIFETIME_YEARS: Final = 4.0
"""Amortisation period of hardware (CCF, GSF Impact Framework, the SCI example)."""
S_PER_YEAR: Final = 365.0 * 24.0 * S_PER_HOUR
"""Seconds in a lifetime year: 365 days, as the SCI specification's 4 x 365 x 24 hours."""

# --- intensity methods (how an emission factor matched the activity's time) --------------
INTENSITY_HOURLY: Final = "hourly"
INTENSITY_HOURLY_PROFILE: Final = "hourly-profile-estimate"
INTENSITY_YEARLY: Final = "yearly"
INTENSITY_WORLD_DEFAULT: Final = "world-default"
INTENSITY_EXPLICIT: Final = "explicit"
INTENSITY_METHODS: Final = (
    INTENSITY_HOURLY,
    INTENSITY_HOURLY_PROFILE,
    INTENSITY_YEARLY,
    INTENSITY_WORLD_DEFAULT,
    INTENSITY_EXPLICIT,
)

# --- methods of imported and estimated records (the ETL's) -------------------------------
METHOD_CODECARBON: Final = "codecarbon"
"""Component energy imported from CodeCarbon's ``emissions.csv``."""
METHOD_CONFIGURED_POWER: Final = "duration-x-configured-power"
"""An unmetered run estimated as duration x ``CARBONLEDGER_UNMETERED_POWER_W``."""
METHOD_RATED_POWER: Final = "rated-power-estimate"
"""``carbonledger estimate``: rated power (TDP) x count x hours, the ML CO2 Impact model."""
METHOD_REQUESTS_BENCH: Final = "requests-x-bench-wh"
"""Imported inference estimated as requests x a benchmarked Wh per request."""

# --- advice (carbonledger advise, the app's Cut page, the report) -----------------------
ADVICE_IDLE_SERVING: Final = "idle-serving"
"""Serving capacity kept up through hours with no or few requests."""
ADVICE_FAILED_TRAINING: Final = "failed-training"
"""Failed and killed training runs."""
ADVICE_PAST_BEST: Final = "training-past-best"
"""Runs that kept training after their objective metric stopped improving."""
ADVICE_SWEEP: Final = "sweep"
"""Hyper-parameter sweeps that kept searching after their best child."""
ADVICE_TIMING: Final = "timing"
"""Deferrable runs started at dirty hours."""
ADVICE_PLACE: Final = "place"
"""Training in a dirtier region than the provider's cleanest."""
ADVICE_MODEL_EFFICIENCY: Final = "model-efficiency"
"""Traffic on a model version dearer per request than a nearly as accurate one."""
ADVICE_KINDS: Final = (
    ADVICE_IDLE_SERVING,
    ADVICE_FAILED_TRAINING,
    ADVICE_PAST_BEST,
    ADVICE_SWEEP,
    ADVICE_TIMING,
    ADVICE_PLACE,
    ADVICE_MODEL_EFFICIENCY,
)
CONFIDENCE_MEASURED: Final = "measured"
"""A saving that is arithmetic on ledger rows."""
CONFIDENCE_ESTIMATE: Final = "estimate"
"""A saving that assumes a behaviour (traffic kept, energy unchanged elsewhere)."""
DAYS_PER_YEAR: Final = 365.0
"""Days in the year savings are annualised to."""
TIMING_FLEX_H: Final = 12
"""Hours a deferrable run may move (the cleanest start within this many hours)."""

# --- budgets -----------------------------------------------------------------------------
DEFAULT_THRESHOLDS_PCT: Final = (50.0, 75.0, 90.0, 100.0)
"""Alert thresholds of a budget that does not name its own (percent of the limit)."""
UNASSIGNED_TEAM: Final = "unassigned"
"""The team of a run that no tag or mapping rule places."""

__all__ = [name for name in dir() if name.isupper() or name in (
    "average_power_w", "energy_kwh_at", "format_methods", "j_from_kwh", "kwh_from_j",
    "method_is_estimate", "metric_filter", "node_metric", "parse_methods",
)]  # fmt: skip
