"""The drift reference on the cluster profile: the same computation as locally, from the version's Pachyderm commit
(the pachd stand-in) and its checkpoint where Determined's storage keeps it (a shared_fs storage mounted on this
machine), found through the Determined master (its stand-in) by the lineage."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import run
from tests.standins import DATA_COMMIT, DATA_REPO


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_cluster_versions_reference_comes_from_its_pachyderm_commit_and_its_checkpoint_storage(
        standin_cluster_env, det_master_standin_server, tiny_checkpoints, tmp_path, capsys):
    state = det_master_standin_server.state
    mount = tmp_path / "mnt-checkpoints"  # the nodes' shared_fs host_path, mounted here too
    with state.lock:
        state.experiments[1]["config"]["checkpoint_storage"]["host_path"] = str(mount)
    uuid = "5d0c6a9e-1f2b-4c3d-8e4f-5a6b7c8d9e01"
    shutil.copytree(tiny_checkpoints[0], mount / "determined-checkpoint" / uuid)
    number = state.add_checkpoint_files(mount / "determined-checkpoint" / uuid, "dogcat-model")

    code, out, err = run(capsys, "--profile", "cluster", "drift", f"dogcat-model@{number}", "--reference")
    assert code == 0, err
    kept = standin_cluster_env.home / "references" / "dogcat-model" / f"{number}-{uuid}.npz"
    assert out.strip() == (f"Drift reference of dogcat-model@{number}: 4 images of {DATA_REPO}@{DATA_COMMIT[:12]} "
                           f"(2 of them held out from training), kept in {kept}.")
    import numpy as np

    with np.load(kept, allow_pickle=False) as stored:
        assert sorted(stored["held_out"]) == [False, False, True, True]
        assert stored["embeddings"].shape == (4, 32) and sorted(n.split("-", 1)[1] for n in stored["names"]) == [
            "cat.1.jpg", "cat.2.jpg", "dog.1.jpg", "dog.2.jpg"]
