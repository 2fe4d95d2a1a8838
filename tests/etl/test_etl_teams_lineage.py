"""Teams (tags, then YAML rules, else unassigned) and lineage (registry -> runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.errors import ConfigError
from carbonledger.etl import run_etl
from carbonledger.etl.teams import TeamRules
from carbonledger.ledger import lifecycle_runs
from carbonledger.settings import get_settings

RULES = """
rules:
  - experiment: "vision/*"
    team: vision
  - experiment_regex: "^nlp-"
    team: nlp
  - user: "bot-*"
    team: platform
"""


def teams_by_run(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT run_name, team, team_rule FROM runs"))
        return {r.run_name: (r.team, r.team_rule) for r in rows}


def test_team_follows_the_documented_order(
    ledger: Engine, client: Any, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "teams.yaml"
    rules.write_text(RULES)
    monkeypatch.setenv("CARBONLEDGER_TEAM_RULES_PATH", str(rules))
    get_settings.cache_clear()
    tagged_exp = client.create_experiment("vision/x", tags={"carbon.team": "exp-carbon-team"})
    plain_team_exp = client.create_experiment("other", tags={"team": "exp-team"})
    vision = client.create_experiment("vision/detector")
    nlp = client.create_experiment("nlp-bert")
    misc = client.create_experiment("misc")
    m, t = metered_metrics(), metered_tags()
    make_run(client, misc, metrics=m, tags={**t, "carbon.team": "a", "team": "b"}, name="r1")
    make_run(client, misc, metrics=m, tags={**t, "team": "b"}, name="r2")
    make_run(client, tagged_exp, metrics=m, tags=t, name="r3")
    make_run(client, plain_team_exp, metrics=m, tags=t, name="r4")
    make_run(client, vision, metrics=m, tags=t, name="r5")
    make_run(client, nlp, metrics=m, tags=t, name="r6")
    make_run(client, misc, metrics=m, tags=t, name="r7")

    run_etl(ledger, mlflow_uris=[mlflow_uri])

    assert teams_by_run(ledger) == {
        "r1": ("a", "run:carbon.team"),
        "r2": ("b", "run:team"),
        "r3": ("exp-carbon-team", "experiment:carbon.team"),
        "r4": ("exp-team", "experiment:team"),
        "r5": ("vision", "rule:0"),
        "r6": ("nlp", "rule:1"),
        "r7": ("unassigned", "default"),
    }
    with ledger.connect() as conn:
        teams = set(conn.execute(text("SELECT name FROM teams")).scalars())
        exp_team = conn.execute(
            text("SELECT team FROM experiments WHERE name = 'vision/detector'")
        ).scalar()
    assert {"a", "b", "vision", "nlp", "unassigned"} <= teams and exp_team == "vision"


def test_user_rules_match_the_run_user_and_the_first_matching_rule_wins(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(RULES + '  - experiment: "*"\n    team: catch-all\n')
    rules = TeamRules.load(path)

    def team(name: str | None, user: str | None) -> str:
        return rules.resolve(run_tags={}, experiment_tags={}, experiment_name=name, user=user)[0]

    assert team("misc", "bot-17") == "platform"
    assert team("vision/a", "bot-17") == "vision"
    assert team("misc", "alice") == "catch-all"
    assert TeamRules().resolve(run_tags={}, experiment_tags={}, experiment_name="x", user="y") == (
        "unassigned",
        "default",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("rules: {}", "top-level 'rules:' list"),
        ("rules:\n  - experiment: x", "'team:' string"),
        ("rules:\n  - team: t", "at least one of"),
        ("rules:\n  - team: t\n    project: x", "unknown keys"),
        ("rules:\n  - team: t\n    experiment_regex: '('", "invalid experiment_regex"),
    ],
)
def test_a_malformed_rules_file_says_what_to_fix(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        TeamRules.load(path)


def test_lineage_links_versions_logged_models_and_tagged_runs(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    m, t = metered_metrics(), metered_tags()
    producer = make_run(client, exp, metrics=m, tags=t)
    failed_sweep = make_run(
        client, exp, metrics=m, tags={**t, "carbon.model_name": "ranker"}, status="FAILED"
    )
    unrelated = make_run(client, exp, metrics=m, tags=t)
    client.create_registered_model("ranker")
    client.create_model_version("ranker", source="/artifacts/ranker/1", run_id=producer)
    logged_producer = make_run(client, exp, metrics=m, tags=t)
    logged = client.create_logged_model(exp, source_run_id=logged_producer, name="m")
    client.create_model_version("ranker", source="/artifacts/ranker/2", model_id=logged.model_id)

    summary = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert summary.models == 1
    with ledger.connect() as conn:
        versions = conn.execute(
            text("SELECT version, run_id, lineage FROM model_versions ORDER BY version")
        ).all()
        lifecycle = set(lifecycle_runs(conn, model_name="ranker"))
    assert [tuple(v) for v in versions] == [
        (1, producer, "run_id"),
        (2, logged_producer, "run_id"),  # MLflow 3 fills it from the LoggedModel
    ]
    assert lifecycle == {producer, failed_sweep, logged_producer}
    assert unrelated not in lifecycle
    again = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    assert again.models <= 1  # only the model on the cursor boundary is re-read


def test_a_logged_model_version_without_run_id_is_traced_through_source_run_id(
    client: Any, mlflow_uri: str
) -> None:
    from carbonledger.etl import extract

    exp = client.create_experiment("e")
    producer = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags())
    logged = client.create_logged_model(exp, source_run_id=producer, name="m")

    found = extract.logged_model_source_runs(client, [logged.model_id, "m-missing"])

    assert found == {logged.model_id: producer}


def test_a_team_first_seen_on_a_changed_run_joins_the_teams_table(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    """Passes that write no run skip the runs' team read; one that changes a run does not."""
    exp = client.create_experiment("e")
    run = make_run(client, exp, metrics=metered_metrics(), tags={**metered_tags(), "team": "a"})
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    run_etl(ledger, mlflow_uris=[mlflow_uri])  # nothing changed
    client.set_tag(run, "team", "late-team")
    assert run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0].updated == 1
    with ledger.connect() as conn:
        teams = set(conn.execute(text("SELECT name FROM teams")).scalars())
    assert {"a", "late-team"} <= teams
