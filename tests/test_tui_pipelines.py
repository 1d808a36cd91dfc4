"""The Pipelines screen: pipelines, the DAG, jobs with datum progress; a job's datums and logs; the keys."""

from __future__ import annotations

from dataclasses import replace

from dlptui.tui.dialogs.confirm import ConfirmDialog
from dlptui.tui.screens.pipelines import JobScreen, PipelinesScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, make_app, wait_for

SPEC = {"pipeline": {"name": "upper"}, "input": {"pfs": {"repo": "raw", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", "for f in /pfs/raw/*; do echo upper $f; tr a-z A-Z < $f > /pfs/out/$(basename $f); done"]}}


def table(app, name: str) -> ResourceTable:
    return app.screen.query_one(f"#{name}", ResourceTable)


def seed(platform):
    platform.data.create_repo("raw")
    platform.data.put_files("raw", "master", {"/a.txt": b"a", "/b.txt": b"b"})
    platform.pipelines.create_pipeline(SPEC)


async def test_pipelines_jobs_and_a_jobs_datums_with_their_logs(config, platform):
    seed(platform)
    app = make_app(config, platform, start="pipelines")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, PipelinesScreen), what="the Pipelines screen")
            await wait_for(pilot, lambda: table(app, "pipelines").row_count == 1, what="the pipeline")
            await wait_for(pilot, lambda: "success" in str(table(app, "jobs").get_row_at(0)), what="the job to succeed")
            dag = str(app.screen.query_one("#dag").render())
            assert "raw ──▶ [upper · running] ──▶ upper" in dag
            assert "2 done, 0 skipped / 2" in str(table(app, "jobs").get_row_at(0))
            table(app, "jobs").focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, JobScreen), what="the job's datums")
            await wait_for(pilot, lambda: table(app, "datums").row_count == 2, what="the datums")
            table(app, "datums").focus()
            await pilot.press("L")
            await wait_for(pilot, lambda: "upper" in str(app.screen.query_one("#log").render()), what="the datum's log")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, PipelinesScreen), what="back")
            table(app, "pipelines").focus()
            await pilot.press("p")
            await wait_for(pilot, lambda: platform.pipelines.inspect_pipeline("upper").state == "paused", what="stopped")
            await pilot.press("c")
            await wait_for(pilot, lambda: platform.pipelines.inspect_pipeline("upper").state == "running", what="started")
            await pilot.press("ctrl+d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
            assert app.screen.focused is not None and "No" in str(app.screen.focused.label)
            await pilot.press("escape")
            assert platform.pipelines.list_pipelines()
    finally:
        for p in platform.pipelines.list_pipelines():
            platform.pipelines.stop_pipeline(p.name)


async def test_read_only_hides_the_changing_keys(config, platform):
    seed(platform)
    platform.pipelines.stop_pipeline("upper")
    app = make_app(replace(config, read_only=True), platform, start="pipelines")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PipelinesScreen), what="the Pipelines screen")
        for action in ("new", "retrain", "pause", "resume", "delete", "restart"):
            assert app.screen.check_action(action, ()) is False
        assert app.screen.check_action("open", ()) is True
        await wait_for(pilot, lambda: table(app, "pipelines").row_count == 1, what="the pipeline, read-only")
        assert "paused" in str(table(app, "pipelines").get_row_at(0))


async def test_T_turns_on_retrain_on_commit_once(config, platform, tmp_path, monkeypatch):
    import json

    from dlptui.actions.pipelines import shipped_spec

    planted = {"pipeline": {"name": "dogs-and-cats-retrain"}, "input": {"pfs": {"repo": "dogs-and-cats", "glob": "/"}},
               "transform": {"cmd": ["sh", "-c", "echo planted > /pfs/out/planted"]}}
    (tmp_path / "dogs-and-cats-retrain").write_text(json.dumps(planted))  # left where the console starts
    monkeypatch.chdir(tmp_path)
    platform.data.create_repo("dogs-and-cats")
    app = make_app(config, platform, start="pipelines")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, PipelinesScreen), what="the Pipelines screen")
            await pilot.press("T")
            await wait_for(pilot, lambda: [p.name for p in platform.pipelines.list_pipelines()] == ["dogs-and-cats-retrain"],
                           what="the retrain pipeline")
            made = platform.pipelines.inspect_pipeline("dogs-and-cats-retrain")
            assert made.inputs == ("dogs-and-cats@master",)
            assert made.spec == json.loads(shipped_spec("dogs-and-cats-retrain").read_text())  # not the planted file
            await wait_for(pilot, lambda: table(app, "pipelines").row_count == 1, what="its row")
            await pilot.press("T")  # on already: one sentence, nothing made twice
            await wait_for(pilot, lambda: any("there already" in str(n.message) for n in app._notifications),
                           what="the sentence")
            assert len(platform.pipelines.list_pipelines()) == 1
    finally:
        for p in platform.pipelines.list_pipelines():
            platform.pipelines.stop_pipeline(p.name)
