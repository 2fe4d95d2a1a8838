"""docker/compose.yaml, checked offline: services, health, order, roles, secrets, commands."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
from deploy_helpers import (
    COMPOSE,
    DOCKER,
    ENV_EXAMPLE,
    ROOT,
    command_argv,
    dockerfile_instructions,
    service_env,
    variables_in,
)

from carbonledger.cli import app as cli_app
from carbonledger.settings import Settings

SERVICES = {"postgres", "mlflow", "migrate", "etl", "app"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|WEBHOOK", re.I)
ONLY_A_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")


def _dependants(compose: dict[str, Any], name: str) -> dict[str, str]:
    """``{service: condition}`` of every service that depends on ``name``."""
    out = {}
    for other, spec in compose["services"].items():
        deps = spec.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {dep: {"condition": "service_started"} for dep in deps}
        if name in deps:
            out[other] = deps[name].get("condition", "service_started")
    return out


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    assert isinstance(deps, dict), "use the long depends_on form with a condition"
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


# --- docker compose itself ---------------------------------------------------------------------


def test_docker_compose_config_validates_when_compose_is_installed(tmp_path) -> None:
    """`docker compose config` is the real validator; here the docker CLI has no compose plugin
    and no engine, so this skips (and says so) unless one is installed later."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine: compose.yaml is checked with PyYAML below")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(
            "the docker CLI has no compose plugin here ('docker compose version' fails): "
            "compose.yaml is checked with PyYAML below"
        )
    result = subprocess.run(
        [docker, "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --- services, health and order ----------------------------------------------------------------


def test_the_stack_has_its_five_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_service_has_a_healthcheck_or_is_a_one_shot_job(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        check = spec.get("healthcheck")
        assert check, f"{name}: no healthcheck"
        if check.get("disable"):
            # only a job that runs to completion may go without one, and then everything
            # that needs it must wait for it to have completed successfully
            assert spec.get("restart") == "no", f"{name}: healthcheck disabled on a daemon"
            dependants = _dependants(compose, name)
            assert dependants, f"{name}: a one-shot job nobody waits for"
            assert set(dependants.values()) == {"service_completed_successfully"}, dependants
            continue
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), (name, test)
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck without {key}"


def test_healthchecks_probe_what_each_service_serves(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = " ".join(services["postgres"]["healthcheck"]["test"][1:])
    assert "pg_isready" in pg and "-h 127.0.0.1" in pg, pg

    mlflow_argv = command_argv(services["mlflow"])
    port = mlflow_argv[mlflow_argv.index("--port") + 1]
    assert services["mlflow"]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/health"

    app_argv = command_argv(services["app"])
    port = app_argv[app_argv.index("--server.port") + 1]
    assert services["app"]["healthcheck"]["test"][-1] == (f"http://127.0.0.1:{port}/_stcore/health")

    assert services["etl"]["healthcheck"]["test"] == ["CMD", "carbonledger-etl-healthcheck"]


def test_healthcheck_programs_are_installed_in_the_image(compose: dict[str, Any]) -> None:
    installed = {
        args.split()[-1].rsplit("/", 1)[-1]
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and args.split()[-1].startswith("/usr/local/bin/")
    }
    for name, spec in compose["services"].items():
        if name == "postgres" or spec["healthcheck"].get("disable"):
            continue
        program = spec["healthcheck"]["test"][1]
        assert program in installed, f"{name}: {program} is not copied into the image"


def test_depends_on_targets_are_healthy_or_completed(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        for dep, condition in _depends(spec).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert condition in ("service_healthy", "service_completed_successfully"), (
                name,
                dep,
                condition,
            )
            if condition == "service_healthy":
                assert not services[dep]["healthcheck"].get("disable"), (name, dep)


def test_migrations_run_once_as_the_owner_before_the_etl_and_the_app(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    services = compose["services"]
    assert command_argv(services["migrate"]) == ["carbonledger", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert _depends(services["migrate"]) == {"postgres": "service_healthy"}
    migrate_url = urlsplit(service_env(services["migrate"])["CARBONLEDGER_LEDGER_URL"])
    assert migrate_url.username == env_example["LEDGER_ETL_USER"]

    assert _depends(services["app"])["migrate"] == "service_completed_successfully"
    assert _depends(services["etl"])["migrate"] == "service_completed_successfully"
    assert _depends(services["etl"])["mlflow"] == "service_healthy"
    assert _depends(services["mlflow"])["postgres"] == "service_healthy"


def test_the_app_connects_with_the_read_only_role(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    url = urlsplit(service_env(compose["services"]["app"])["CARBONLEDGER_LEDGER_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.username == env_example["LEDGER_APP_USER"] != env_example["LEDGER_ETL_USER"]
    assert url.password == env_example["LEDGER_APP_PASSWORD"]
    assert url.hostname == "postgres" and url.path == "/" + env_example["LEDGER_DB"]
    # the app holds no other credential
    assert not any(SECRET_KEY.search(key) for key in service_env(compose["services"]["app"]))


def test_etl_and_migrate_use_the_owning_role_on_the_same_database(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    for name in ("etl", "migrate"):
        url = urlsplit(service_env(compose["services"][name])["CARBONLEDGER_LEDGER_URL"])
        assert (url.scheme, url.username, url.hostname, url.port, url.path) == (
            "postgresql+psycopg",
            env_example["LEDGER_ETL_USER"],
            "postgres",
            5432,
            "/" + env_example["LEDGER_DB"],
        )


# --- MLflow ------------------------------------------------------------------------------------


def test_mlflow_server_runs_on_postgresql_with_one_worker_and_an_artifact_volume(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    import mlflow.cli

    spec = compose["services"]["mlflow"]
    argv = command_argv(spec)
    assert argv[:2] == ["mlflow", "server"]
    options = {opt for param in mlflow.cli.server.params for opt in param.opts}
    unknown = [arg for arg in argv[2:] if arg.startswith("-") and arg not in options]
    assert not unknown, f"not options of this MLflow's `mlflow server`: {unknown}"
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    destination = argv[argv.index("--artifacts-destination") + 1]
    assert any(v.split(":")[1] == destination for v in spec["volumes"]), spec["volumes"]

    env = service_env(spec)
    # `--backend-store-uri` is read from MLFLOW_BACKEND_STORE_URI by mlflow server itself
    backend = next(p for p in mlflow.cli.server.params if "--backend-store-uri" in p.opts)
    assert backend.envvar == "MLFLOW_BACKEND_STORE_URI"
    url = urlsplit(env["MLFLOW_BACKEND_STORE_URI"])
    assert url.scheme == "postgresql+psycopg"
    assert (url.username, url.password, url.path) == (
        env_example["MLFLOW_DB_USER"],
        env_example["MLFLOW_DB_PASSWORD"],
        "/" + env_example["MLFLOW_DB"],
    )


def test_the_etl_reaches_mlflow_through_its_host_validation(compose: dict[str, Any]) -> None:
    """MLflow 3 answers 403 to Host headers outside --allowed-hosts (default: localhost and
    private IPs), /health excepted: a stack whose healthchecks pass but whose ETL is refused."""
    from mlflow.environment_variables import MLFLOW_SERVER_ALLOWED_HOSTS
    from mlflow.server.security_utils import is_allowed_host_header

    mlflow_env = service_env(compose["services"]["mlflow"])
    allowed = [h.strip() for h in mlflow_env[MLFLOW_SERVER_ALLOWED_HOSTS.name].split(",")]
    assert "*" not in allowed, "host validation must stay on"
    uris = service_env(compose["services"]["etl"])["CARBONLEDGER_MLFLOW_URIS"]
    parsed = Settings(mlflow_uris=uris).mlflow_uris
    assert parsed, "the ETL reads no tracking server"
    for uri in parsed:
        assert is_allowed_host_header(allowed, urlsplit(uri).netloc), (uri, allowed)
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


# --- secrets and variables ---------------------------------------------------------------------


def test_no_literal_secret_in_compose(compose_raw: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name, spec in compose_raw["services"].items():
        for key, value in service_env(spec).items():
            if SECRET_KEY.search(key):
                assert ONLY_A_REFERENCE.match(value), f"{name}: {key} is not a ${{VAR}}"
    # credentials inside URLs: user and password must both be references
    for user, password in re.findall(r"://([^:/@\s]+):([^@\s]+)@", text):
        assert ONLY_A_REFERENCE.match(user) and ONLY_A_REFERENCE.match(password), (user, password)
    # a ${VAR:-default} fallback would put a secret in the file
    for match in re.finditer(r"\$\{([A-Z_]*(?:PASSWORD|SECRET|TOKEN)[A-Z_]*):?-", text):
        pytest.fail(f"{match.group(1)} has a default in compose.yaml")


def test_every_variable_compose_reads_is_in_env_example(env_example: dict[str, str]) -> None:
    used = variables_in(COMPOSE.read_text(encoding="utf-8"))
    assert used
    missing = sorted(used - set(env_example))
    assert not missing, f"add to docker/.env.example: {missing}"
    unused = sorted(set(env_example) - used)
    assert not unused, f"docker/.env.example sets variables compose never reads: {unused}"


def test_env_example_holds_placeholders_only(env_example: dict[str, str]) -> None:
    for key, value in env_example.items():
        if re.search(r"PASSWORD", key):
            assert value.startswith("change-me"), f"{key} must be a change-me placeholder"
        elif SECRET_KEY.search(key):
            assert value == "", f"{key} must be empty in the example"
    assert not (DOCKER / ".env").exists() or ".env" in (DOCKER / ".gitignore").read_text()
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_required_variables_fail_with_a_message(compose_raw: dict[str, Any]) -> None:
    from deploy_helpers import interpolate_tree, parse_env_file

    env = parse_env_file(ENV_EXAMPLE)
    del env["LEDGER_APP_PASSWORD"]
    with pytest.raises(KeyError, match="LEDGER_APP_PASSWORD"):
        interpolate_tree(compose_raw, env)


# --- real settings and commands ----------------------------------------------------------------


def test_carbonledger_variables_are_real_settings(compose: dict[str, Any]) -> None:
    fields = {f"CARBONLEDGER_{name.upper()}" for name in Settings.model_fields}
    texts = {
        path.name: path.read_text(encoding="utf-8")
        for path in [COMPOSE, ENV_EXAMPLE, *sorted(DOCKER.glob("*.sh"))]
    }
    for name, text in texts.items():
        unknown = set(re.findall(r"\bCARBONLEDGER_[A-Z0-9_]+", text)) - fields
        assert not unknown, f"{name}: not carbonledger settings: {sorted(unknown)}"
    # and the values compose passes are valid for the settings object
    for spec in compose["services"].values():
        env = {k: v for k, v in service_env(spec).items() if k.startswith("CARBONLEDGER_") and v}
        if env:
            kwargs = {k.removeprefix("CARBONLEDGER_").lower(): v for k, v in env.items()}
            Settings(**kwargs)


def _cli_command(argv: list[str]) -> Any:
    """The click command that ``carbonledger ARGS`` runs; fails on unknown commands/options."""
    assert argv[0] == "carbonledger", argv
    command = typer.main.get_command(cli_app)
    rest = argv[1:]
    while rest and isinstance(getattr(command, "commands", None), dict):
        if rest[0] not in command.commands:
            pytest.fail(f"`{' '.join(argv)}`: no command {rest[0]!r} in carbonledger.cli.app")
        command = command.commands[rest[0]]
        rest = rest[1:]
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [arg for arg in rest if arg.startswith("-") and arg.split("=")[0] not in options]
    assert not unknown, f"`{' '.join(argv)}`: unknown options {unknown}"
    return command


def _carbonledger_calls_in_script(text: str) -> list[list[str]]:
    calls = []
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        match = re.search(r"(?:^|[\s;(]|if |then )(carbonledger(?![-\w])(?: [^;|&)\"]*)?)", code)
        if match and not code.strip().startswith("echo"):
            argv = [t for t in shlex.split(match.group(1)) if not t.startswith('"$')]
            calls.append([t for t in argv if "$" not in t])
    return calls


def test_service_commands_are_real_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    _cli_command(command_argv(services["migrate"]))

    # the ETL loop script: every carbonledger call in it is a real command with real options
    loop = command_argv(services["etl"])
    assert loop == ["carbonledger-etl-loop"]
    copies = {
        args.split()[-1].rsplit("/", 1)[-1]: args.split()[-2]
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and args.split()[-1].startswith("/usr/local/bin/")
    }
    script = (ROOT / copies["carbonledger-etl-loop"]).read_text(encoding="utf-8")
    calls = _carbonledger_calls_in_script(script)
    assert ["carbonledger", "etl", "--quiet", "--lock-timeout"] in calls, calls
    for call in calls:
        _cli_command(call)


def test_the_app_runs_the_streamlit_script_the_image_carries(compose: dict[str, Any]) -> None:
    spec = compose["services"]["app"]
    argv = command_argv(spec)
    assert argv[:2] == ["streamlit", "run"]
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    script = argv[2]
    copies = [
        args.split()
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and "--from" not in args
    ]
    source = None
    for parts in copies:
        src, dest = parts[-2], parts[-1]
        if dest.endswith("/") and script.startswith(dest):
            source = ROOT / src / script.removeprefix(dest)
    assert source is not None, f"{script} is not copied into the image"
    if not (ROOT / "app").is_dir() or not source.exists():
        pytest.fail(f"{source.relative_to(ROOT)} (the Streamlit entry point) is missing")


def test_ports_and_bind_mounts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["postgres"], "keep PostgreSQL off the host network"
    assert services["mlflow"]["ports"][0].endswith(":5000")
    assert services["app"]["ports"][0].endswith(":8501")
    for name, spec in services.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
