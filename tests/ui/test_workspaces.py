"""Sessions open workspaces by name under the served root, never by path."""

import pytest

from ui.workspaces import WorkspaceRoot
from workbench.errors import WorkbenchError


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "/tmp/x", ".hidden", "x" * 65,
                                  "models", "a\\b", "tab\there", "¡!"])
def test_names_that_could_be_paths_are_refused(tmp_path, name):
    root = WorkspaceRoot.create(tmp_path / "root")
    with pytest.raises(WorkbenchError):
        root.open(name, create=True)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x").exists()
    assert not (tmp_path / "root").exists() or root.names() == []


@pytest.mark.parametrize(("name", "folder"), [
    ("Māori project", "Māori-project"),
    ("ñandú", "ñandú"),
    ("हिन्दी कक्षा", "हिन्दी-कक्षा"),  # vowel signs and virama are marks: kept
    ("ʻŌlelo Hawaiʻi", "ʻŌlelo-Hawaiʻi"),  # the ʻokina is a letter
    ("日本語", "日本語"),
    ("Yorùbá (Ọ̀yọ́)", "Yorùbá-Ọ̀yọ́"),  # punctuation left out of the folder name
    ("Ma\u0304ori", "Māori"),  # NFD typed, NFC folder
])
def test_names_in_any_script_are_accepted(tmp_path, name, folder):
    import unicodedata

    root = WorkspaceRoot.create(tmp_path / "root")
    ws = root.open(name, create=True)
    assert ws.root == tmp_path / "root" / folder
    assert root.names() == [folder]  # listed at once, before any import
    assert root.choices() == [(unicodedata.normalize("NFC", name), folder)]
    assert root.open(name).root == ws.root  # reopened by the name as typed...
    assert root.resolve(folder).root == ws.root  # ...or by its folder


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
    with pytest.raises(WorkbenchError, match="press Create"):
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


def test_with_several_users_each_works_in_their_own_folder(tmp_path):
    from dataclasses import replace

    from ui.workspaces import handling

    root = replace(WorkspaceRoot.create(tmp_path / "root"), per_user=True)
    with handling("ana"):
        ana = root.open("quechua", create=True)
        ana.write_settings({"seed": 0})
        assert root.names() == ["quechua"]
    assert ana.root == (tmp_path / "root" / "ana" / "quechua").resolve()
    with handling("ben"):
        assert root.names() == []  # ana's workspace is not listed for ben...
        with pytest.raises(WorkbenchError, match="no workspace"):
            root.resolve("quechua")  # ...nor can he open it
        assert root.open("quechua", create=True).root == tmp_path / "root" / "ben" / "quechua"
    with pytest.raises(WorkbenchError, match="Log in"):
        root.resolve("quechua")  # nobody logged in: nothing resolves
    assert root.names() == []
    for name in ("", "../ana", "models"):
        with handling(name), pytest.raises(WorkbenchError, match="Log in"):
            root.open("x", create=True)


def test_messages_name_files_relative_to_the_workspace(tmp_path):
    from ui.workspaces import handling, page_text

    root = WorkspaceRoot.create(tmp_path / "root")
    with handling(None):
        ws = root.open("quechua", create=True)
        archive = ws.root / "uploads" / "20240101-000000" / "corpus.zip"
        assert page_text(f"{archive}: refusing member 'a' (symbolic link)") == (
            "uploads/20240101-000000/corpus.zip: refusing member 'a' (symbolic link)")
        assert page_text(f"{ws.root}: not a workspace.") == "quechua: not a workspace."
        assert page_text(f"see {root.models_folder / 'xlsr'} and {root.root / 'other'}") == (
            "see models/xlsr and other")
        assert page_text("cannot read '/tmp/gradio/3f9a/my clip.wav' (bad)") == (
            "cannot read 'my clip.wav' (bad)")  # Gradio's cache, and any other server path
    # Text that is no path stays as it is.
    for text in ("the vowels /a/ and /i/", "1/2 of the clips", "https://example.org/a/b"):
        assert page_text(text) == text
