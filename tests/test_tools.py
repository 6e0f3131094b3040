"""The maintainers' tools refuse bad arguments before doing anything (issue 16)."""
import pytest


@pytest.mark.parametrize("tool", ["sync_notebooks", "student_copies", "time_notebooks"])
def test_tools_name_a_notebook_that_does_not_exist(tool, capsys):
    import importlib

    module = importlib.import_module(f"tools.{tool}")
    with pytest.raises(SystemExit):
        module.main(["nothere.ipynb"])
    assert "no such notebook: nothere.ipynb" in capsys.readouterr().err


def test_time_notebooks_render_without_timings_is_refused_and_writes_nothing(tmp_path, capsys):
    from tools import time_notebooks

    guide = tmp_path / "guide.md"
    guide.write_text("unchanged")
    with pytest.raises(SystemExit):
        time_notebooks.main(["--render", "--json", str(tmp_path / "none.json"), "--guide", str(guide)])
    assert "does not exist" in capsys.readouterr().err and guide.read_text() == "unchanged"
