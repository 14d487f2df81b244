"""The chaos campaign on real processes: ``kill -9`` of each kind mid-map, and a random loop.

Each test runs the campaign (``runtime.tools.chaos``) at CI size: a service process
of its own on a real SQLite file runs a map of ledger branches with waits,
retries and saves, and the campaign kills processes of that service with
``SIGKILL`` while it runs. Whatever was killed, the execution must finish
with the clean run's result (computed once, without kills, by the same
campaign), with no acknowledged step lost, and no step started or completed
after its acknowledgement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.tools.chaos import Campaign, CampaignReport, CleanRun, Kind, Workload
from runtime.tools.cli import main as cli_main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# 40 branches x 3 steps, a durable wait after each step, every 4th step retried once,
# every 3rd branch saving a Ref: about 3 s clean on two loaded cores.
WORKLOAD = Workload(branches=40, steps=3, wait=0.2, pause=0.02, flaky_every=4, save_every=3,
                    workers=2, max_concurrency=20)
HANG_AFTER = 90.0  # seconds after the last kill: far beyond any recovery measured


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    work_dir = tmp_path_factory.mktemp("chaos-clean")
    return Campaign(WORKLOAD, kills=0, kinds=[], work_dir=work_dir,
                    hang_after=HANG_AFTER).clean()


def assert_every_promise_held(report: CampaignReport) -> None:
    problems = "\n".join(report.problems())
    assert report.hangs == 0, problems
    for found in report.rounds:
        assert found.finished, problems
        assert found.matches_clean, problems
        assert found.lost_acks == [], problems
        assert found.started_after_ack == [], problems
        assert found.completed_after_ack == [], problems
        assert found.service_errors == [], problems
        assert found.leftovers == [], problems
    assert report.ok, problems


def test_the_clean_run_gives_what_the_steps_compute(clean: CleanRun) -> None:
    assert clean.round.finished, clean.round.outcome
    assert clean.values == WORKLOAD.expected()
    assert clean.matches_expected
    assert clean.round.reruns == [] and clean.round.kills == []


@pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])
def test_kill_9_of_one_process_mid_map_loses_nothing(clean: CleanRun, kind: Kind,
                                                      tmp_path: Path) -> None:
    campaign = Campaign(WORKLOAD, kills=1, kinds=[kind], seed=19, work_dir=tmp_path,
                        hang_after=HANG_AFTER)
    report = campaign.run(clean=clean)
    assert [k.kind for k in report.kills] == [kind], report.problems()
    assert_every_promise_held(report)
    kill = report.kills[0]
    assert kill.recovered_after is not None, "the execution never progressed after the kill"
    assert f"\n{kind.value} " in report.table()


FRAMEWORK_KINDS = [kind for kind in Kind if not kind.is_helper]


def test_a_loop_of_random_kills_of_every_framework_process_loses_nothing(
        clean: CleanRun, tmp_path: Path) -> None:
    campaign = Campaign(WORKLOAD, kills=6, kinds=FRAMEWORK_KINDS, seed=7, work_dir=tmp_path,
                        hang_after=HANG_AFTER)
    report = campaign.run(clean=clean)
    assert len(report.kills) + sum(len(r.skipped) for r in report.rounds) == 6
    assert_every_promise_held(report)


def test_a_loop_of_random_kills_of_every_kind_the_helpers_included_loses_nothing(
        clean: CleanRun, tmp_path: Path) -> None:
    campaign = Campaign(WORKLOAD, kills=6, kinds=list(Kind), seed=7, work_dir=tmp_path,
                        hang_after=HANG_AFTER)
    report = campaign.run(clean=clean)
    assert len(report.kills) + sum(len(r.skipped) for r in report.rounds) == 6
    assert_every_promise_held(report)


def test_the_chaos_command_prints_one_json_document_and_exits_0_when_every_check_held(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["chaos", "--branches", "12", "--kills", "1", "--kinds", "worker",
                     "--seed", "3", "--json"])
    out = capsys.readouterr().out
    document = json.loads(out)
    assert code == 0, document["problems"]
    assert document["ok"] is True and document["clean"]["matches_expected"] is True
    assert document["per_kind"]["worker"]["kills"] == 1
    assert set(document["per_kind"]["all"]) >= {
        "kills", "recovery_median", "recovery_max", "reruns", "started_after_ack",
        "completed_after_ack", "lost_acks", "hangs"}


def test_the_chaos_command_refuses_an_unknown_kind_and_names_the_kinds(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["chaos", "--kinds", "checkpoint,janitor"]) == 2
    err = capsys.readouterr().err
    assert "'janitor'" in err and "resource_tracker" in err
