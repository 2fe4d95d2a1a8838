"""docker/Dockerfile, checked offline, and the wheel its build stage installs, built for real."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from deploy_helpers import DOCKER, ROOT, dockerfile_instructions

NEEDED = {"pyproject.toml", "setup.py", "README.md", "carbonledger/", "migrations/", "app/"}


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def _copies(stage: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    out = []
    for keyword, args in stage:
        if keyword == "COPY" and "--from=" not in args:
            parts = [p for p in args.split() if not p.startswith("--")]
            out.append((parts[:-1], parts[-1]))
    return out


def test_multi_stage_build_then_runtime() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert stages[0][0][1].endswith("AS build")
    runtime = stages[-1]
    assert any(k == "COPY" and "--from=build" in a for k, a in runtime), "runtime copies build"
    # the build tools and sources stay in the build stage
    runtime_sources = {src for srcs, _ in _copies(runtime) for src in srcs}
    assert not runtime_sources & {"carbonledger/", "migrations/", "setup.py"}


def test_the_image_copies_what_the_package_needs() -> None:
    copied = {src for stage in _stages() for srcs, _ in _copies(stage) for src in srcs}
    missing = NEEDED - copied
    assert not missing, f"the Dockerfile does not copy {sorted(missing)}"
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: no such path in the repository"


def test_the_build_installs_the_wheel_with_pip_and_checks_it() -> None:
    build = " ".join(args for keyword, args in _stages()[0] if keyword == "RUN")
    assert "pip wheel --no-deps" in build
    assert "pip install /wheels/carbonledger-" in build
    assert "_migrations" in build  # the build fails when the wheel lacks its migrations


def test_runs_as_a_non_root_user() -> None:
    runtime = _stages()[-1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "no USER in the runtime stage"
    args_defaults = dict(a.split("=", 1) for k, a in runtime if k == "ARG" and "=" in a)
    user = users[-1].split(":")[0]
    if user.startswith("${"):
        arg = user.strip("${}")
        user = args_defaults[arg]
        # the account is created with that id
        assert any("useradd" in a and f'--uid "${{{arg}}}"' in a for k, a in runtime if k == "RUN")
    assert user not in ("root", "0", ""), users


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    """The build context is filtered by docker/Dockerfile.dockerignore: what COPY needs stays."""
    rules = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                verdict = not negate
        return verdict

    copied = {src.rstrip("/") for stage in _stages() for srcs, _ in _copies(stage) for src in srcs}
    assert not [src for src in copied if ignored(src)]
    assert ignored(".venv") and ignored("mlruns") and ignored("docker/.env")


def test_entrypoint_and_scripts_are_installed() -> None:
    runtime = _stages()[-1]
    entrypoint = next(args for keyword, args in runtime if keyword == "ENTRYPOINT")
    assert "carbonledger-entrypoint" in entrypoint
    installed = {dest.rsplit("/", 1)[-1]: srcs[0] for srcs, dest in _copies(runtime)}
    assert installed["carbonledger-entrypoint"] == "docker/entrypoint.sh"
    for name in ("carbonledger-etl-loop", "carbonledger-etl-healthcheck"):
        assert (ROOT / installed[name]).is_file()


def _build_wheel(tmp_path: Path) -> Path:
    """`pip wheel --no-deps .` from a copy of exactly what the Dockerfile's build stage copies."""
    src = tmp_path / "src"
    src.mkdir()
    build_stage = _stages()[0]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for srcs, _dest in _copies(build_stage):
        for item in srcs:
            path = ROOT / item
            if path.is_dir():
                shutil.copytree(path, src / item.rstrip("/"), ignore=ignore)
            else:
                shutil.copy2(path, src / item)
    out = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (wheel,) = out.glob("carbonledger-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_the_image_installs_is_complete(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(
            zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")
        )

    # migrations, copied by setup.py's build_py
    assert "carbonledger/_migrations/env.py" in names
    assert "carbonledger/_migrations/script.py.mako" in names
    # the Streamlit app, copied by setup.py's build_py (``carbonledger app`` from a wheel)
    pages = {p.name for p in (ROOT / "app" / "app_pages").glob("*.py")}
    assert "carbonledger/_app/streamlit_app.py" in names
    assert pages and all(f"carbonledger/_app/app_pages/{p}" in names for p in pages)
    versions = {p.name for p in (ROOT / "migrations" / "versions").glob("*.py")}
    shipped = {
        n.rsplit("/", 1)[-1] for n in names if n.startswith("carbonledger/_migrations/versions/")
    }
    assert versions and versions <= shipped, versions - shipped
    assert not [n for n in names if "__pycache__" in n]

    # every data file of the source tree (intensity CSVs, CPU table, SQL files, py.typed...)
    data = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "carbonledger").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert any(n.startswith("carbonledger/intensity/data/") and n.endswith(".csv") for n in data)
    missing = sorted(data - names)
    assert not missing, f"package data missing from the wheel (pyproject package-data): {missing}"
    modules = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "carbonledger").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert not sorted(modules - names)

    assert "carbonledger = carbonledger.cli:main" in entry_points
    assert "[mlflow.run_context_provider]" in entry_points


@pytest.mark.slow
def test_the_installed_wheel_finds_its_own_migrations(tmp_path: Path) -> None:
    """What the Dockerfile's check does: the packaged copy, not a repository, serves Alembic."""
    wheel = _build_wheel(tmp_path)
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    code = (
        "import carbonledger.ledger.migrate as m, sys;"
        f"assert m.__file__.startswith({str(target)!r}), m.__file__;"
        "print(m.migrations_dir().name, m.head_revision())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "_migrations"
