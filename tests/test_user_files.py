"""A file a person named, read with one sentence for each way it cannot be (actions/user_files.py): the sentences
the policy, spec, labels and image readers all say, their exit codes, and what a caller may change."""

from __future__ import annotations

import pytest

from dlptui.actions.gate import policy_of
from dlptui.actions.pipelines import load_spec
from dlptui.actions.predict import read_image
from dlptui.actions.user_files import read_user_file
from dlptui.errors import InvalidInput, NotFound


def test_the_content_as_text_or_bytes(tmp_path, monkeypatch):
    (tmp_path / "spec.json").write_bytes("{\"name\": \"caf\u00e9\"}".encode())
    monkeypatch.setenv("HOME", str(tmp_path))
    assert read_user_file("~/spec.json", "spec file", give="give a spec file") == "{\"name\": \"caf\u00e9\"}"
    assert read_user_file(tmp_path / "spec.json", "spec file", give="x", text=False) == "{\"name\": \"caf\u00e9\"}".encode()


def test_each_way_a_file_cannot_be_read_is_one_sentence(tmp_path):
    missing, folder, under_a_file, binary = tmp_path / "gone.toml", tmp_path, tmp_path / "a.txt" / "b.toml", tmp_path / "b.toml"
    (tmp_path / "a.txt").write_text("a file, not a folder")
    binary.write_bytes(b"\xff\xfe\x00")
    said = {}
    for path in (missing, folder, under_a_file, binary):
        with pytest.raises((NotFound, InvalidInput)) as e:
            read_user_file(path, "policy file", give="give a .toml policy file")
        said[path] = (type(e.value), e.value.exit_code, str(e.value))
    assert said == {
        missing: (NotFound, 3, f"There is no policy file {missing}; check the path."),
        folder: (InvalidInput, 2, f"{folder} is a folder; give a .toml policy file."),
        under_a_file: (InvalidInput, 2, f"The policy file {under_a_file} cannot be read (Not a directory)."),
        binary: (InvalidInput, 2, f"The policy file {binary} cannot be read (not UTF-8 text)."),
    }
    with pytest.raises(InvalidInput, match=rf"^There is no policy file {missing}; give auto\.$") as e:
        read_user_file(missing, "policy file", give="x", missing=InvalidInput, missing_fix="give auto")
    assert e.value.exit_code == 2


def test_the_callers_keep_their_sentences(tmp_path):
    missing = str(tmp_path / "gone.yaml")
    with pytest.raises(InvalidInput, match=rf"^There is no policy file {missing}; give --gate auto, off, or a \.toml "
                                           r"or \.yaml policy file\.$"):
        policy_of(missing)
    with pytest.raises(InvalidInput, match=rf"^{tmp_path} is a folder; give --gate a \.toml or \.yaml policy file\.$"):
        policy_of(str(tmp_path))
    with pytest.raises(NotFound, match=rf"^There is no spec file {missing}; check the path\.$"):
        load_spec(missing)
    with pytest.raises(InvalidInput, match=rf"^{tmp_path} is a folder; give a pipeline spec file \(JSON or YAML\)\.$"):
        load_spec(tmp_path)
    with pytest.raises(NotFound, match=rf"^There is no file {missing}; check the path\.$"):
        read_image(missing)
    with pytest.raises(InvalidInput, match=rf"^{tmp_path} is a folder; give the image files in it\.$"):
        read_image(tmp_path)
