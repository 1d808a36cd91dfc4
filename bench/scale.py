"""A home at a real team's scale, for bench/console.py (not a benchmark of its own: `make bench` runs it as a no-op).

    python bench/scale.py HOME        # builds it (about a minute), then prints what it holds

What it holds, and how each part is written:

- 5,000 experiments, completed, each with one trial and 36 metric rows (30 training losses, 3 validations of
  accuracy and validation loss); one of them a random search of 200 trials (20 training losses and one validation
  each). Written through the training store's own Database (`TrainingDB._db.write()`, its schema, its JSON config
  column), a few thousand rows a transaction: `TrainingDB.insert` commits and syncs one experiment at a time
  (synchronous=FULL), about 40 ms each here, which would be minutes for these alone.
- 200 model versions of `dogcat-model`: a checkpoint row each on 200 of the experiments (the store's
  `add_checkpoint`), registered through the registry's own `register` (the API), staging and production set with
  `promote`.
- `big-repo`: 100,000 files of 64 bytes in 1,000 folders, one commit through `put_files` (the API).
- `dogcat-deploy`: a deployment that died (its Envoy and model server recorded with the pid and start time of a
  process that has exited, as a crash leaves them), with 1,000,000 logged predictions written through the model
  server's own prediction log module (`serving/prediction_log.py`: its `connect` and schema), 50,000 rows a
  transaction: the model server writes one transaction per prediction.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = 5_000
SEARCH_TRIALS = 200
VERSIONS = 200
FILES, FOLDERS = 100_000, 1_000
PREDICTIONS = 1_000_000
DEPLOYMENT = "dogcat-deploy"
MODEL = "dogcat-model"


def experiments(platform) -> None:
    import yaml

    from dlptui.platform.model import ExperimentState

    training = platform.training
    trial_dir = ROOT / "trial"
    config = yaml.safe_load((trial_dir / "tiny.yaml").read_text())
    search = {**config, "searcher": {"name": "random", "metric": "validation_loss", "smaller_is_better": True,
                                     "max_trials": SEARCH_TRIALS, "max_length": {"batches": 20}}}
    done = ExperimentState.COMPLETED.value
    rng = random.Random(0)
    start = time.time() - 30 * 86400
    with training.db._db.write() as db:
        for n in range(1, EXPERIMENTS + 1):
            is_search = n == EXPERIMENTS // 2
            conf = search if is_search else config
            created = start + n * 500
            cursor = db.execute(
                "INSERT INTO experiments (name, state, created, ended, config_file, trial_dir, config, data_repo,"
                " data_commit, max_batches) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ("dogcat-search" if is_search else f"dogcat-{n}", done, created, created + 300,
                 str(trial_dir / "tiny.yaml"), str(trial_dir), json.dumps(conf), "dogs-and-cats", "0" * 32,
                 20 * SEARCH_TRIALS if is_search else 30),
            )
            experiment = cursor.lastrowid
            trials = SEARCH_TRIALS if is_search else 1
            rows = []
            for t in range(trials):
                hparams = {"learning_rate": 10 ** rng.uniform(-4, -1)} if is_search else {}
                trial = db.execute(
                    "INSERT INTO trials (experiment_id, state, hparams, bracket, target, created, ended)"
                    " VALUES (?, ?, ?, 0, ?, ?, ?)",
                    (experiment, done, json.dumps(hparams), 20 if is_search else 30, created, created + 300),
                ).lastrowid
                batches = 20 if is_search else 30
                rows += [(experiment, trial, b, "training", "loss", rng.random(), created + b) for b in range(1, batches + 1)]
                for b in ((20,) if is_search else (10, 20, 30)):
                    rows += [(experiment, trial, b, "validation", "accuracy", rng.random(), created + b),
                             (experiment, trial, b, "validation", "validation_loss", rng.random(), created + b)]
            db.executemany("INSERT INTO metrics (experiment_id, trial_id, batch, grp, name, value, time)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def versions(platform) -> None:
    training, registry = platform.training, platform.registry
    for n in range(1, VERSIONS + 1):
        experiment = EXPERIMENTS - n + 1 if EXPERIMENTS - n + 1 != EXPERIMENTS // 2 else 1
        checkpoint = str(uuid.UUID(int=n))
        trial = training.db.trial_rows(experiment)[0].id
        training.db.add_checkpoint(checkpoint, experiment, trial, 30, f"determined/{checkpoint}")
        registry.register(MODEL, str(experiment), checkpoint)
    registry.promote(MODEL, VERSIONS - 1, "production")
    registry.promote(MODEL, VERSIONS, "staging")


def repo(platform) -> None:
    platform.data.create_repo("big-repo", "100,000 files in 1,000 folders")
    files = {f"/folder-{n % FOLDERS:04d}/file-{n}.bin": n.to_bytes(8, "big") * 8 for n in range(FILES)}
    platform.data.put_files("big-repo", "master", files, message="100,000 files")


def deployment(platform) -> None:
    """A deployment whose processes died, with its prediction log."""
    from dlptui.platform.local.backends import Backend
    from dlptui.platform.local.processes import ProcessRecord

    sys.path.insert(0, str(ROOT / "serving"))
    from prediction_log import connect  # the model server's own module

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = ProcessRecord(dead.pid, time.time() - 3600)
    folder = Path(platform.config.home) / "serving" / DEPLOYMENT
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    version = platform.registry.get_version(MODEL, "production")
    backend = Backend("v1-dead", MODEL, version.version, version.checkpoint_location or "", str(folder / "run" / "v1.sock"),
                      record.pid, record.started, str(folder / "logs" / "v1-dead.log"))
    (folder / "logs" / "v1-dead.log").write_text("the model server died\n")
    state = {"name": DEPLOYMENT, "created": time.time() - 7200, "gateway": {"port": 1, **record.to_json()},
             "primary": backend.to_json(), "canary": None, "canary_traffic": 0, "shadow": None, "generation": 1,
             "history": [{"time": time.time() - 7200, "change": "deployed", "by": "bench", "model": MODEL,
                          "from_version": None, "to_version": version.version, "checkpoint": backend.checkpoint,
                          "checkpoint_uuid": version.checkpoint_uuid}]}
    (folder / "state.json").write_text(json.dumps(state))
    log = connect(str(folder / "predictions.sqlite"))
    rng = random.Random(1)
    t0 = time.time() - PREDICTIONS * 0.5
    batch = 50_000
    for first in range(0, PREDICTIONS, batch):
        rows = []
        for i in range(first, min(PREDICTIONS, first + batch)):
            cat = rng.random()
            label = "cat" if cat > 0.5 else "dog"
            rows.append((t0 + i * 0.5, MODEL, version.version, "primary", uuid.UUID(int=i).hex, f"{i:064x}", 4000,
                         label, json.dumps({"cat": round(cat, 4), "dog": round(1 - cat, 4)}), 30 + rng.random() * 10,
                         200 if i % 97 else 400))
        log.execute("BEGIN IMMEDIATE")
        log.executemany("INSERT INTO predictions (time, model, version, role, request_id, input_sha256, input_bytes,"
                        " label, probabilities, latency_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        log.execute("COMMIT")
    log.close()


def build(home: Path) -> dict[str, float]:
    """Build the scale case into `home` (an empty DLPTUI_HOME); seconds each part took."""
    from dlptui.config import load_config
    from dlptui.platform import Platform

    env = {"DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    platform = Platform(load_config(env=env))
    took = {}
    try:
        for name, step in (("experiments", experiments), ("versions", versions), ("repo", repo),
                           ("deployment", deployment)):
            t0 = time.monotonic()
            step(platform)
            took[name] = round(time.monotonic() - t0, 1)
    finally:
        platform.close()
    return took


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.splitlines()[2].strip())
        raise SystemExit(0)  # `make bench` runs every bench/*.py: nothing to do without a home
    home = Path(sys.argv[1])
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    sys.path.insert(0, str(ROOT))
    print(json.dumps(build(home)))
