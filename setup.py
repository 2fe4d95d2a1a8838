"""Build hook: ship the Alembic ``migrations/`` and the Streamlit ``app/`` inside the wheel.

The repository keeps ``migrations/`` and ``app/`` at its root (where Alembic, Streamlit and
reviewers expect them); ``carbonledger db upgrade`` and ``carbonledger app`` from a
non-editable install need them too, so ``build_py`` copies them to ``carbonledger/_migrations``
and ``carbonledger/_app`` in the build tree. Editable installs read the repository's folders
directly (``carbonledger.ledger.migrate.migrations_dir``, ``carbonledger.cli.app_cmd``).
Everything else about the package is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithMigrations(build_py):
    """``build_py`` that also copies ``migrations/`` into ``carbonledger/_migrations``."""

    def run(self) -> None:
        """Build as usual, then copy the migrations and the app (not for editable installs)."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        for folder, packaged in (("migrations", "_migrations"), ("app", "_app")):
            target = Path(self.build_lib) / "carbonledger" / packaged
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(
                root / folder, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )


setup(cmdclass={"build_py": BuildPyWithMigrations})
