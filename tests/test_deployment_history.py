"""What served when: the rule (the entry at or before a moment holds), its sentence and drawing (render.timeline), and
`dlptui deployment history NAME --at TIME` / `--timeline` on a history as dlptui writes it (the real serving in
tests/test_cli_canary.py writes one through real changes)."""

from __future__ import annotations

import json
import time

import pytest

from dlptui.platform import deployment_policy as policy
from dlptui.platform.deployment_policy import Routing
from dlptui.platform.model import DeploymentChange as C
from dlptui.render import timeline as tl
from dlptui.text import timestamp
from tests.helpers import no_repr, run, run_json

T = 1796492082.0
M = "dogcat-model"
WHY_PROMOTED = "every guarded metric is better or no different after 412 requests (accuracy +4.1 points)"
HISTORY = [
    C(T, "deployed", "alice", M, None, 1),
    C(T + 600, "canary", "alice", M, 1, 1, canary=2, share=10),
    C(T + 900, "shadow", "bob", M, 1, 1, canary=2, share=10, shadow=3),
    C(T + 1500, "canary", "gate", M, 1, 1, canary=2, share=25, shadow=3, reason="the canary is no worse after 200 requests"),
    C(T + 2400, "promoted", "gate", M, 1, 2, shadow=3, reason=WHY_PROMOTED),
    C(T + 3000, "rolled back", "carol", M, 2, 1, shadow=3),
]


# --- the rule ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at, expected", [
    (T - 1, None),  # before the first entry
    (T, 0),  # exactly at an entry's time: that entry holds
    (T + 599.9, 0),
    (T + 600, 1),
    (T + 1000, 2),
    (T + 2999, 4),
    (T + 3000, 5),  # after a rollback: the rollback's routing
    (T + 10**6, 5),
])
def test_the_entry_at_or_before_a_moment_serves(at, expected):
    assert policy.serving_at(HISTORY, at) == (None if expected is None else HISTORY[expected])
    assert policy.serving_at(list(reversed(HISTORY)), at) == (None if expected is None else HISTORY[expected])  # any order


def test_of_two_entries_at_one_time_the_later_written_serves_and_no_history_serves_nothing():
    first, second = C(T, "deployed", "a", M, None, 1), C(T, "updated", "a", M, 1, 2)
    assert policy.serving_at([first, second], T) is second
    assert policy.serving_at([], T) is None


def test_an_entry_an_older_dlptui_wrote_serves_its_primary_alone():
    old = [{"time": T, "change": "deployed", "by": "alice", "model": M, "from_version": None, "to_version": 1},
           {"time": T + 60, "change": "updated", "by": "alice", "model": M, "from_version": 1, "to_version": 2}]
    served = policy.serving_at(policy.changes(old), T + 90)
    assert (served.to_version, served.canary, served.share, served.shadow, served.reason) == (2, None, 0, None, "")
    assert tl.served("old", T + 90, policy.changes(old)).startswith(
        f"At {timestamp(T + 90)}, old served dogcat-model version 2 on all its requests.")


# --- the sentence -----------------------------------------------------------------------------------------------


def test_the_sentence_names_the_versions_shares_and_the_change_that_set_them():
    said = tl.served("dogcat-deploy", T + 1000, HISTORY)
    assert said == (f"At {timestamp(T + 1000)}, dogcat-deploy served dogcat-model version 1 on 90% and version 2 "
                    f"(canary) on 10%; version 3 shadowed every request. Set by \"shadow\" (by bob) at "
                    f"{timestamp(T + 900)}.")
    automatic = tl.served("dogcat-deploy", T + 2400, HISTORY)
    assert "version 2 on all its requests; version 3 shadowed" in automatic
    assert automatic.endswith(f'Set by "promoted" (by gate) at {timestamp(T + 2400)}. Why: {WHY_PROMOTED}.')


def test_before_the_first_entry_it_was_not_deployed_and_a_shortened_history_does_not_guess():
    assert tl.served("dogcat-deploy", T - 60, HISTORY) == (
        f"At {timestamp(T - 60)}, dogcat-deploy was not deployed yet: its history begins when alice deployed it at "
        f"{timestamp(T)}.")
    cut = tl.served("dogcat-deploy", T + 700, HISTORY[2:])  # the oldest entries dropped (HISTORY_KEEP)
    assert "what dogcat-deploy served is not known" in cut and timestamp(T + 900) in cut


# --- the timeline -----------------------------------------------------------------------------------------------


def _rows(lines: list[str]) -> dict[str, str]:
    return {line.split(" ", 1)[0]: line for line in lines if line[:1] == "v"}


@pytest.mark.parametrize("width", [60, 80, 132])
def test_the_timeline_draws_a_band_per_version_with_its_shares_and_marks(width):
    drift = [C(T + 2000, "drift: drifts (p 0.001, window 200)", "drift test", M, None, 2)]
    lines = tl.timeline(HISTORY, T + 3600, width, drift=drift)
    assert all(len(line) <= width for line in lines)
    rows = _rows(lines)
    assert set(rows) == {"v1", "v2", "v3"}
    v1, v2, v3 = (rows[v][3:] for v in ("v1", "v2", "v3"))
    # v1: primary throughout but for the promoted stretch, its share written in while a canary ran
    assert v1[0] == tl.PRIMARY and "90%" in v1 and "75%" in v1 and v1[-1] == tl.PRIMARY
    # v2: a canary from T+600 (10 % then 25 %), then the primary until the rollback at T+3000, then nothing
    assert v2.lstrip(" ")[0] == tl.CANARY and "10%" in v2 and "25%" in v2 and tl.PRIMARY in v2
    assert v2.index(tl.CANARY) > v2.index("10%") - 2 and v2.index(tl.PRIMARY) > v2.index("25%")
    assert len(v2) < len(v1)  # nothing drawn after the rollback
    # v3: a shadow from T+900 to the end
    assert set(v3.strip()) == {tl.SHADOW} and v3.endswith(tl.SHADOW)
    assert tl.SHADOW not in v1 + v2 and tl.CANARY not in v1
    marks = next(line for line in lines if tl.AUTOMATIC in line)
    assert marks.count(tl.AUTOMATIC) == 2 and marks.count(tl.DRIFT) == 1
    assert marks.index(tl.AUTOMATIC) < marks.index(tl.DRIFT) < marks.rindex(tl.AUTOMATIC)  # in time order
    axis = next(line for line in lines if line.rstrip().endswith("now"))
    assert timestamp(T) in axis or timestamp(T)[11:] in axis
    assert tl.LEGEND[:30] in "\n".join(lines)
    events = [line for line in lines if line[:1] in (tl.AUTOMATIC, tl.DRIFT)]
    assert [e[0] for e in events] == [tl.AUTOMATIC, tl.DRIFT, tl.AUTOMATIC]
    assert events[-1].startswith(f"{tl.AUTOMATIC} {timestamp(T + 2400)} promoted: every guarded")


def test_the_timeline_places_changes_in_proportion_and_keeps_a_short_role_visible():
    history = [C(T, "deployed", "a", M, None, 1), C(T + 500, "canary", "a", M, 1, 1, canary=2, share=50),
               C(T + 750, "canary removed", "a", M, 1, 1), C(T + 910, "shadow", "a", M, 1, 1, shadow=3),
               C(T + 911, "shadow removed", "a", M, 1, 1)]
    rows = _rows(tl.timeline(history, T + 1000, 43))  # 40 columns of band: 25 s a column
    v1, v2, v3 = (rows[v][3:] for v in ("v1", "v2", "v3"))
    assert len(v1) == 40 and v1.count(tl.PRIMARY) == 40 - 3 and v1.index("50%") in (20, 21)
    assert v2.index(tl.CANARY) in (19, 20) and len(v2) in (29, 30) and "50%" in v2
    assert v3.strip() == tl.SHADOW and v3.index(tl.SHADOW) == 36  # one second inside a column: still there


def test_the_timeline_stays_within_a_narrow_pane_and_says_when_there_is_no_history():
    assert tl.timeline([], T, 80) == [tl.NO_HISTORY] and "no history yet" in tl.NO_HISTORY.lower()
    lines = tl.timeline(HISTORY, T + 3600, 30)
    assert all(len(line) <= 30 for line in lines[len(_rows(lines)):])
    assert len(_rows(lines)["v1"]) <= 3 + max(tl.MIN_BAND, 27)
    one = tl.timeline(HISTORY[:1], T, 80)  # one entry, no time passed: still a band, no division by zero
    assert _rows(one)["v1"][3:] == tl.PRIMARY * 77


# --- the command ------------------------------------------------------------------------------------------------


def _write_history(platform, name: str) -> float:
    """A stopped deployment's state as the local profile keeps it, its history written by the policy's own entries
    (the routing after each change), the last one a minute ago."""
    start = float(int(time.time()) - 3600)  # whole seconds: an ISO time written back names the entry
    steps = [("deployed", "alice", None, Routing(M, 1), ""),
             ("canary", "alice", Routing(M, 1), Routing(M, 1, 2, 10), ""),
             ("shadow", "bob", Routing(M, 1, 2, 10), Routing(M, 1, 2, 10, 3), ""),
             ("promoted", "gate", Routing(M, 1, 2, 10, 3), Routing(M, 2, None, 0, 3), WHY_PROMOTED)]
    history: list[dict] = []
    for i, (change, by, before, after, reason) in enumerate(steps):
        e = policy.entry(change, by, before, after, **({"reason": reason} if reason else {}))
        e["time"] = start + i * 1000
        history = policy.appended(history, e)
    folder = platform.serving.root / name
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"name": name, "history": history}))
    return start


def test_history_at_a_moment_says_what_served_and_json_gives_the_routing(platform, capsys):
    start = _write_history(platform, "when")
    code, out, err = run(capsys, "deployment", "history", "when", "--at", str(start + 1500))
    assert code == 0 and err == ""
    assert out == (f"At {timestamp(start + 1500)}, when served dogcat-model version 1 on 90% and version 2 (canary) "
                   f"on 10%. Set by \"canary\" (by alice) at {timestamp(start + 1000)}.\n")
    code, out, _ = run(capsys, "deployment", "history", "when", "--at", "1m")  # an age: after the promotion
    assert code == 0 and "version 2 on all its requests; version 3 shadowed every request" in out
    assert f"Why: {WHY_PROMOTED}." in out and no_repr(out)
    iso = timestamp(start + 2000).replace(" ", "T")
    answer = run_json(capsys, "deployment", "history", "when", "--at", iso)
    assert answer["routing"] == {"model": M, "primary": 1, "canary": 2, "share": 10, "shadow": 3}
    assert answer["entry"]["change"] == "shadow" and answer["entry"]["by"] == "bob"
    assert answer["deployment"] == "when" and abs(answer["at"] - (start + 2000)) < 1
    assert answer["first_entry"] == pytest.approx(start)


def test_before_the_first_entry_it_says_so_and_exits_0(platform, capsys):
    start = _write_history(platform, "when")
    code, out, _ = run(capsys, "deployment", "history", "when", "--at", str(start - 60))
    assert code == 0 and out.strip() == (f"At {timestamp(start - 60)}, when was not deployed yet: its history begins "
                                         f"when alice deployed it at {timestamp(start)}.")
    answer = run_json(capsys, "deployment", "history", "when", "--at", str(start - 60))
    assert answer["routing"] is None and answer["entry"] is None


@pytest.mark.parametrize("given", ["yesterday-ish", "nan", "2h-ago", str(time.time() + 3600)])
def test_a_bad_or_future_time_is_one_sentence(platform, capsys, given):
    _write_history(platform, "when")
    code, out, err = run(capsys, "deployment", "history", "when", "--at", given)
    assert code == 2 and out == "" and "--at" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unknown_deployment_is_not_found(platform, capsys):
    code, _, err = run(capsys, "deployment", "history", "nowhere", "--at", "1h")
    assert code == 3 and "no deployment named 'nowhere'" in err
