"""Sessions open workspaces by name under the served root, never by path."""

import pytest

from ui.workspaces import WorkspaceRoot
from workbench.errors import WorkbenchError


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "/tmp/x", ".hidden", "x" * 65,
                                  "models", "a b", "ñandú"])
def test_names_that_could_be_paths_are_refused(tmp_path, name):
    root = WorkspaceRoot.create(tmp_path / "root")
    with pytest.raises(WorkbenchError):
        root.open(name, create=True)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x").exists()


def test_create_open_and_list(tmp_path):
    root = WorkspaceRoot.create(tmp_path / "root")
    assert root.names() == []
    ws = root.open("quechua-1", create=True)
    assert ws.root == (tmp_path / "root" / "quechua-1").resolve()
    ws.write_settings({"seed": 0})
    (tmp_path / "root" / "not_a_workspace").mkdir()
    assert root.names() == ["quechua-1"]
    assert root.resolve("quechua-1") == ws
    with pytest.raises(WorkbenchError, match="no workspace"):
        root.resolve("other")
    with pytest.raises(WorkbenchError, match="create"):
        root.open("other")
    with pytest.raises(WorkbenchError, match="No workspace is open"):
        root.resolve("")


def test_the_default_workspace_comes_first_and_sets_the_root(tmp_path):
    root = WorkspaceRoot.create(None, tmp_path / "projects" / "my ws")
    assert root.root == (tmp_path / "projects").resolve()
    assert root.default_name == "my ws"  # the operator's folder, even with a space
    assert root.resolve("my ws").root == (tmp_path / "projects" / "my ws").resolve()
    assert root.names()[0] == "my ws"
    assert root.models_folder == root.root / "models"
