"""The process of one local experiment: `python -m dlptui.platform.local.search_runner HOME ID`.

It runs the experiment's search (a `single` searcher is a search of one trial): it creates
trials with the hyperparameters `search.Sampler` draws, runs each as a child process of the
trial (`training_runner.py HOME ID TRIAL`, in this process's group, so that a kill of the
experiment takes them all), at most `max_concurrent_trials` at once, and applies
`search.plan` whenever a trial reaches its rung: a promoted trial is started again from its
checkpoint with the next rung as its target, one stopped early is completed where it is.

Everything it knows is in the training records, so it can die at any moment: started again
(`resume`) it kills the trial processes it left behind, and continues every trial that has not
ended from its latest checkpoint. A trial process that dies without a word (kill -9, OOM) is
started again from its checkpoint, up to RESTARTS times. SIGTERM (pause) is passed on to the
trials, which stop at their next boundary with a checkpoint; the experiment is then paused.

Each trial's output goes to its own log and, line by line, to the experiment's (this
process's stdout), prefixed with the trial where the search has more than one.

Before any of that it takes one of the platform's slots (training_start.take_slot): while the
platform's max_concurrent_experiments experiments train, the experiment stays queued, with this
process waiting; a kill stops it there, a pause leaves it paused (it never held a slot).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dlptui.platform.local import search, training_start
from dlptui.platform.local.training_db import TrainingDB, TrialRow
from dlptui.platform.model import ExperimentState

QUEUED, RUNNING, PAUSED = ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.PAUSED
ACTIVE = (QUEUED, RUNNING)
POLL_S = 0.3
SLOT_POLL_S = 0.5  # how often a queued runner looks for a free slot
RESTARTS = 3  # a trial process that died by a signal is started again this many times
_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(time.strftime("%Y-%m-%d %H:%M:%S") + f" INFO dlptui.search: {line}\n")
        sys.stdout.flush()


def trial_log(root: Path, trial_id: int) -> Path:
    return root / "logs" / f"trial-{trial_id}.log"


class Runner:
    def __init__(self, home: Path, experiment_id: int) -> None:
        self.home = home
        self.root = home / "training"
        self.db = TrainingDB(self.root)
        self.id = experiment_id
        self.row = self.db.row(experiment_id)
        conf = self.row.config
        self.searcher = conf.get("searcher") or {"name": "single"}
        self.name = self.searcher.get("name", "single")
        self.space = {k: v for k, v in (conf.get("hyperparameters") or {}).items() if isinstance(v, dict) and "type" in v}
        self.length = self.row.max_batches if self.name not in search.ASHA else int(self.searcher["max_time"])
        self.total = search.max_trials(self.searcher, self.space)
        self.slots = search.concurrency(self.searcher)
        self.children: dict[int, subprocess.Popen] = {}
        self.stopping = False
        self.slot: int | None = None  # the platform slot this runner holds (training_start.take_slot)
        self.turn: int | None = None  # the coalesce key's turn, held until this process exits
        self.sampler: search.Sampler | None = None
        signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum, frame) -> None:
        self.stopping = True

    def claim(self) -> bool:
        """First thing: record this process as the experiment's (whoever spawned it may die before it does),
        then let go of the start lock. An experiment of a coalesce key then waits, queued, for its key's turn
        (`training_start.take_turn`: one experiment of a key trains at a time). False when the experiment was
        killed, paused or superseded before it came to train. The experiment stays queued until `take_slot`
        moves it to running."""
        lock = training_start.inherited()
        self.slot = training_start.inherited(training_start.SLOT_VAR)  # the one its starter took for it, if any
        key = training_start.key_of(self.row.config)
        try:
            me = os.getpid()
            if not self.db.update(self.id, only_if=ACTIVE, pid=me, pid_started=training_start.started(me)):
                return False
        finally:
            training_start.release(lock)
        if not key:
            return True

        def waiting() -> None:
            say(f"Waiting for the turn of {key}: another experiment of it trains; this one starts when that one ends, "
                "unless a newer one supersedes it first.")

        self.turn = training_start.take_turn(self.root, key, on_wait=waiting, stopped=lambda: self.stopping)
        return self.turn is not None

    def take_slot(self) -> bool:
        """Hold one of the platform's slots, waiting (queued) while every one is held and an older experiment
        waits before this one; then the experiment is running. False when it was paused or killed meanwhile, or
        another runner took it over: this one leaves."""
        cap, me, told = training_start.cap_of(), os.getpid(), False
        while not self.stopping:
            row = self.db.row(self.id)
            if row.state not in ACTIVE or row.pid != me:
                return False
            if self.slot is None and not training_start.others_wait(self.db.rows((QUEUED,)), self.id):
                self.slot = training_start.take_slot(self.root, cap)  # held until this process ends
            if self.slot is not None:
                if self.db.update(self.id, only_if=ACTIVE, only_pid=me, state=RUNNING):
                    return True
                continue  # changed meanwhile: the next look says what
            if not told:
                say(f"Queued: {cap} local experiment{'s' if cap != 1 else ''} already train{'s' if cap == 1 else ''} at once "
                    "(max_concurrent_experiments); it starts when a slot frees.")
                told = True
            time.sleep(SLOT_POLL_S)
        paused = self.db.row(self.id).request == "pause"  # a pause asked by dlptui is written there
        if not paused:  # a SIGTERM from elsewhere (a supersede has ended it killed already: this changes nothing then)
            paused = self.db.update(self.id, only_if=(QUEUED,), only_pid=me, state=PAUSED, pid=None, request=None)
        if paused:
            say("Paused while queued.")
        return False

    # --- trials ---------------------------------------------------------------------

    def _sampler(self) -> search.Sampler:
        if self.sampler is None:
            seed = (self.row.config.get("reproducibility") or {}).get("experiment_seed")
            self.sampler = search.Sampler(self.root / "searches" / f"{self.id}.journal", f"experiment-{self.id}",
                                          self.searcher, self.space, seed)
        return self.sampler

    def _create(self, index: int) -> int:
        if self.space:
            number, hparams = self._sampler().ask()
        else:
            number, hparams = None, {}
        bracket = index % len(search.brackets(self.searcher)) if self.name in search.ASHA else 0
        target = search.rungs(self.searcher, bracket)[0] if self.name in search.ASHA else self.length
        trial_id = self.db.insert_trial(self.id, hparams, target, bracket, number)
        say(f"Trial {trial_id} created ({', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in hparams.items()) or 'the config as it is'}), to batch {target}.")
        return trial_id

    def _latest_batch(self, trial_id: int) -> int:
        found = [c.batch for c in self.db.checkpoints(self.id) if c.trial_id == str(trial_id)]
        return max(found, default=0)

    def _spawn(self, trial: TrialRow) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child = subprocess.Popen(
            [sys.executable, "-m", "dlptui.platform.local.training_runner", str(self.home), str(self.id), str(trial.id)],
            cwd=self.row.trial_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.children[trial.id] = child
        # (the trial records itself too; one that has ended already keeps its end)
        self.db.update_trial(trial.id, only_if=ACTIVE, state=RUNNING, pid=child.pid,
                             pid_started=training_start.started(child.pid), error=None)
        prefix = f"trial {trial.id}: " if self.total > 1 else ""
        threading.Thread(target=self._tee, args=(child, trial_log(self.root, trial.id), prefix), daemon=True).start()

    def _tee(self, child: subprocess.Popen, path: Path, prefix: str) -> None:
        with open(path, "ab") as own:
            for raw in iter(child.stdout.readline, b""):
                own.write(raw)
                own.flush()
                with _print_lock:
                    sys.stdout.write(prefix + raw.decode("utf-8", errors="replace"))
                    sys.stdout.flush()

    def _adopt(self) -> None:
        """At start: trial processes of an earlier runner are stopped; every trial not ended continues."""
        import psutil

        for t in self.db.trial_rows(self.id):
            if t.pid:
                try:
                    p = psutil.Process(t.pid)
                    if not t.pid_started or abs(p.create_time() - t.pid_started) <= 1.0:
                        p.kill()
                        p.wait(10)
                        say(f"Trial {t.id}: its process {t.pid} from an earlier run was stopped.")
                except psutil.Error:
                    pass
            if t.state in (RUNNING, QUEUED, ExperimentState.ERROR):
                self.db.update_trial(t.id, only_if=(t.state,), state=QUEUED, pid=None,
                                     restarts=0 if t.state is ExperimentState.ERROR else t.restarts)
            elif t.state is PAUSED:  # paused mid-leg: continues; at its rung: the plan decides
                leg_done = self._latest_batch(t.id) >= t.target
                self.db.update_trial(t.id, only_if=(PAUSED,), pid=None, **({} if leg_done else {"state": QUEUED}))

    def _reap(self) -> None:
        for trial_id, child in list(self.children.items()):
            code = child.poll()
            if code is None:
                continue
            del self.children[trial_id]
            t = self.db.trial_row(trial_id)
            if t.state is ExperimentState.COMPLETED:  # it trained its whole length: the study hears its result
                self._tell(t, stopped=False)
            elif t.state is PAUSED and not self.stopping and self._latest_batch(trial_id) < t.target:
                if t.restarts < RESTARTS:  # it stopped short of its rung (a stray SIGTERM): once more from its checkpoint
                    self.db.update_trial(trial_id, only_if=(PAUSED,), state=QUEUED, restarts=t.restarts + 1)
                else:
                    self.db.update_trial(trial_id, only_if=(PAUSED,), state=ExperimentState.ERROR,
                                         error=f"Trial {trial_id} stopped before batch {t.target} {RESTARTS + 1} times; see its log.")
            elif t.state is RUNNING:  # it died without its last word
                if code < 0 and t.restarts < RESTARTS and not self.stopping:
                    say(f"Trial {trial_id} died (signal {-code}); starting it again from its latest checkpoint.")
                    self.db.update_trial(trial_id, only_if=(RUNNING,), state=QUEUED, pid=None, restarts=t.restarts + 1)
                else:
                    error = f"The process of trial {trial_id} died (exit {code}); resume the experiment to continue from its latest checkpoint."
                    self.db.update_trial(trial_id, only_if=(RUNNING,), state=ExperimentState.ERROR, pid=None, error=error)

    def _views(self, rows: list[TrialRow]) -> list[search.TrialView]:
        metric = self.searcher.get("metric")
        views = []
        for t in rows:
            if t.id in self.children:
                state = "running"
            elif t.state is ExperimentState.QUEUED:
                state = "queued"
            elif t.state is ExperimentState.PAUSED:
                state = "waiting" if self._latest_batch(t.id) >= t.target else "queued"
            elif t.state is ExperimentState.COMPLETED:
                state = "done"
            else:
                state = "failed"
            ladder = search.rungs(self.searcher, t.bracket) if self.name in search.ASHA else [t.target]
            results = {r: self.db.metric_at(t.id, r, metric) for r in ladder if r <= t.target}
            views.append(search.TrialView(t.id, t.bracket, t.target, state, results))
        return views

    def _tell(self, t: TrialRow, stopped: bool) -> None:
        if t.optuna_number is None or not self.space:
            return
        metric = self.searcher.get("metric")
        value = self.db.metric_at(t.id, t.target, metric)
        self._sampler().tell(t.optuna_number, value, stopped)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        say(f"Experiment {self.id}: searcher {self.name}, {self.total} trial{'s' if self.total != 1 else ''}, "
            f"at most {self.slots} at once.")
        self._adopt()
        while True:
            self._reap()
            if self.stopping:
                return self._pause()
            rows = self.db.trial_rows(self.id)
            views = self._views(rows)
            can_create = len(rows) < self.total
            decided = search.plan(self.searcher, views, can_create, self.length)
            by_id = {t.id: t for t in rows}
            # every decision is about a trial waiting at its rung (paused there)
            for trial_id in decided.complete:
                if self.db.update_trial(trial_id, only_if=(PAUSED,), state=ExperimentState.COMPLETED, ended=time.time()):
                    self._tell(by_id[trial_id], stopped=False)
                    say(f"Trial {trial_id} completed at batch {by_id[trial_id].target}.")
            for trial_id in decided.stop:
                if self.db.update_trial(trial_id, only_if=(PAUSED,), state=ExperimentState.COMPLETED, stopped_early=1,
                                        ended=time.time()):
                    self._tell(by_id[trial_id], stopped=True)
                    say(f"Trial {trial_id} stopped early at batch {by_id[trial_id].target} (not promoted).")
            for trial_id, target in decided.promote:
                if self.db.update_trial(trial_id, only_if=(PAUSED,), state=QUEUED, target=target):
                    say(f"Trial {trial_id} promoted to batch {target}; it resumes from its checkpoint.")
            rows = self.db.trial_rows(self.id)
            queued = [t for t in rows if t.state is ExperimentState.QUEUED and t.id not in self.children]
            queued.sort(key=lambda t: (-t.target, t.id))  # promotions (the longer legs) first
            free = self.slots - len(self.children)
            for t in queued[:max(0, free)]:
                self._spawn(t)
            free = self.slots - len(self.children)
            while free > 0 and len(rows) < self.total and not self.stopping:
                self._create(len(rows))
                rows = self.db.trial_rows(self.id)
                self._spawn(rows[-1])
                free -= 1
            if not self.children and not any(t.state in (ExperimentState.QUEUED,) for t in rows):
                waiting = [v for v in self._views(rows) if v.state == "waiting"]
                if not waiting:
                    return self._finish(rows)
            time.sleep(POLL_S)

    def _pause(self) -> int:
        say("Pause requested: every trial stops at its next boundary with a checkpoint.")
        for child in self.children.values():
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        for trial_id, child in list(self.children.items()):
            child.wait()
            self.db.update_trial(trial_id, only_if=(RUNNING,), state=PAUSED, pid=None)
        if self.db.row(self.id).request != "pause":  # a SIGTERM from elsewhere; a pause asked by dlptui is written there
            self.db.update(self.id, only_if=(RUNNING,), only_pid=os.getpid(), state=PAUSED, pid=None, request=None)
        say("Paused.")
        return 0

    def _finish(self, rows: list[TrialRow]) -> int:
        """The experiment's end, written only while it is still this runner's and running: a kill or a
        pause that landed first stays."""
        done = [t for t in rows if t.state is ExperimentState.COMPLETED]
        failed = [t for t in rows if t.state is ExperimentState.ERROR]
        total = self.db.experiment(self.db.row(self.id)).batches_done
        mine = {"only_if": ACTIVE, "only_pid": os.getpid(), "ended": time.time(), "pid": None, "request": None}
        if done:
            sized = {"max_batches": max(total, 1)} if self.name != "single" else {}
            if not self.db.update(self.id, state=ExperimentState.COMPLETED, error=None, **sized, **mine):
                return self._overtaken()
            say("Completed.")
            return 0
        error = failed[0].error if failed and failed[0].error else "No trial of the search completed."
        if not self.db.update(self.id, state=ExperimentState.ERROR, error=error, **mine):
            return self._overtaken()
        say(f"Ended with an error: {error}")
        return 1

    def _overtaken(self) -> int:
        say(f"The experiment was {self.db.row(self.id).state.value} meanwhile; that stays.")
        return 0


def expected_batches(searcher: dict, space: dict, length: int) -> int:
    """The batches a search plans to train (its progress bar's end): every trial's length, or ASHA's
    expected sum over rungs (n / divisor^k trials reaching rung k)."""
    n = search.max_trials(searcher, space)
    if searcher.get("name") not in search.ASHA:
        return n * length
    total = 0.0
    count = len(search.brackets(searcher))
    for b in range(count):
        share = n / count
        previous = 0
        for k, rung in enumerate(search.rungs(searcher, b)):
            total += share / float(searcher.get("divisor", 4)) ** k * (rung - previous)
            previous = rung
    return max(1, int(round(total)))


def main(argv: list[str]) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    runner = Runner(Path(argv[0]), int(argv[1]))
    if not runner.claim():
        row = runner.db.row(runner.id)
        say(f"Experiment {runner.id} was {row.state.value} before it started" + (f" ({row.error})" if row.error else "")
            + "; nothing to run.")
        return 0
    if not runner.take_slot():
        return 0
    return runner.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
