"""Which team and model a run is charged to: tags first, then YAML mapping rules.

Team, first that is set (design.md): the run's tag ``carbon.team``, its tag ``team``, the same
tags of its nearest tagged ancestor (nested runs: sweeps, Optuna, Ray Tune, GridSearchCV),
the experiment's tag ``carbon.team``, its tag ``team``, the first matching mapping rule, else
``unassigned``. Model: the run's ``carbon.model_name``, its nearest tagged ancestor's, the
experiment's ``carbon.model_name``, else none. This module splits the rule into what a run's
own tags say (:meth:`TeamRules.own_team`, :func:`own_model_name`) and what applies when they
say nothing (:meth:`TeamRules.fallback_team`, :func:`fallback_model_name`);
``carbonledger.etl.attribution`` walks the ancestors in between.

Rules file (``CARBONLEDGER_TEAM_RULES_PATH``)::

    rules:
      - experiment: "/vision/*"      # shell-style pattern on the experiment name
        team: vision
      - experiment_regex: "^nlp-"    # regular expression (re.search) on the experiment name
        team: nlp
      - user: "bob*"                 # pattern on the run's user
        team: platform

A rule may combine keys (all must match). The first matching rule wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from carbonledger import contract
from carbonledger.errors import ConfigError

UNASSIGNED = contract.UNASSIGNED_TEAM
MAX_TEAM_LENGTH = 200  # runs.team
TEAM_TAGS = (contract.TAG_TEAM, contract.TAG_TEAM_PLAIN)
RULE_DEFAULT = "default"


def _tag(tags: Mapping[str, str], key: str) -> str | None:
    return (tags.get(key) or "").strip() or None


def own_team_of(run_tags: Mapping[str, str]) -> tuple[str, str] | None:
    """``(team, rule)`` from a run's own tags (``carbon.team``, then ``team``), if any."""
    for key in TEAM_TAGS:
        value = _tag(run_tags, key)
        if value:
            return value, f"run:{key}"
    return None


def own_model_name(run_tags: Mapping[str, str]) -> str | None:
    """The model a run's own ``carbon.model_name`` tag names, if any."""
    return _tag(run_tags, contract.TAG_MODEL_NAME)


def fallback_model_name(experiment_tags: Mapping[str, str]) -> tuple[str, str] | None:
    """``(model, rule)`` from the experiment's ``carbon.model_name`` tag, if any."""
    value = _tag(experiment_tags, contract.TAG_MODEL_NAME)
    return (value, f"experiment:{contract.TAG_MODEL_NAME}") if value else None


@dataclass(frozen=True, slots=True)
class TeamRule:
    """One mapping rule; ``None`` fields do not constrain."""

    team: str
    experiment: str | None = None
    experiment_regex: re.Pattern[str] | None = None
    user: str | None = None

    def matches(self, experiment_name: str | None, user: str | None) -> bool:
        """Whether every key of the rule matches."""
        name = experiment_name or ""
        if self.experiment is not None and not fnmatchcase(name, self.experiment):
            return False
        if self.experiment_regex is not None and not self.experiment_regex.search(name):
            return False
        return self.user is None or fnmatchcase(user or "", self.user)


@dataclass(frozen=True, slots=True)
class TeamRules:
    """The ordered mapping rules of a rules file (possibly none)."""

    rules: tuple[TeamRule, ...] = ()

    @classmethod
    def load(cls, path: Path | None) -> TeamRules:
        """Read a rules file; ``None`` means no rules.

        Raises:
            ConfigError: the file is missing or malformed; the message names the entry.
        """
        if path is None:
            return cls()
        import yaml

        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"cannot read the team rules file {path}: {exc}; fix it or unset "
                "CARBONLEDGER_TEAM_RULES_PATH"
            ) from None
        entries = doc.get("rules") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ConfigError(f"{path}: expected a top-level 'rules:' list (see docs/ledger.md)")
        return cls(tuple(_parse_rule(path, i, entry) for i, entry in enumerate(entries)))

    def resolve(
        self,
        *,
        run_tags: Mapping[str, str],
        experiment_tags: Mapping[str, str],
        experiment_name: str | None,
        user: str | None,
    ) -> tuple[str, str]:
        """Return ``(team, rule)``; ``rule`` says which step chose it, e.g. ``run:carbon.team``.

        For a run on its own; a nested run's ancestors come between the run's tags and the
        fallback (``carbonledger.etl.attribution``).
        """
        return own_team_of(run_tags) or self.fallback_team(
            experiment_tags=experiment_tags, experiment_name=experiment_name, user=user
        )

    def fallback_team(
        self, *, experiment_tags: Mapping[str, str], experiment_name: str | None, user: str | None
    ) -> tuple[str, str]:
        """``(team, rule)`` when neither the run nor an ancestor carries a team tag."""
        for key in TEAM_TAGS:
            value = _tag(experiment_tags, key)
            if value:
                return value, f"experiment:{key}"
        for index, rule in enumerate(self.rules):
            if rule.matches(experiment_name, user):
                return rule.team, f"rule:{index}"
        return UNASSIGNED, RULE_DEFAULT


def _parse_rule(path: Path, index: int, entry: object) -> TeamRule:
    where = f"{path}: rule {index + 1}"
    if not isinstance(entry, dict) or not isinstance(entry.get("team"), str):
        raise ConfigError(f"{where}: each rule needs a 'team:' string")
    team = entry["team"].strip()
    if not team or len(team) > MAX_TEAM_LENGTH or not team.isprintable():
        raise ConfigError(
            f"{where}: team {team[:40]!r} must be 1 to {MAX_TEAM_LENGTH} printable characters"
        )
    unknown = set(entry) - {"team", "experiment", "experiment_regex", "user"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {sorted(unknown)}; use experiment, experiment_regex, user, team"
        )
    if not set(entry) - {"team"}:
        raise ConfigError(f"{where}: give at least one of experiment, experiment_regex, user")
    regex = None
    if entry.get("experiment_regex") is not None:
        try:
            regex = re.compile(str(entry["experiment_regex"]))
        except re.error as exc:
            raise ConfigError(f"{where}: invalid experiment_regex: {exc}") from None
    return TeamRule(
        team=team,
        experiment=None if entry.get("experiment") is None else str(entry["experiment"]),
        experiment_regex=regex,
        user=None if entry.get("user") is None else str(entry["user"]),
    )
