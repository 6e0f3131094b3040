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


def test_time_notebooks_write_chapters_without_timings_is_refused_and_writes_nothing(tmp_path, capsys):
    from tools import time_notebooks

    import nbformat

    guide = tmp_path / "guide.md"
    guide.write_text("unchanged")
    chapter = tmp_path / "01-chapter.ipynb"      # never the real chapters: other work may be editing them
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 1. T\n\n**Time**: 5 min")]),
                   chapter)
    before = chapter.read_text()
    with pytest.raises(SystemExit):
        time_notebooks.main(["--write-chapters", "--json", str(tmp_path / "none.json"), "--guide", str(guide),
                             str(chapter)])
    assert "does not exist" in capsys.readouterr().err and guide.read_text() == "unchanged"
    assert chapter.read_text() == before


def test_time_notebooks_check_chapters_names_a_chapter_missing_from_the_data(tmp_path, capsys):
    import json

    import nbformat

    from tools import time_notebooks

    path = tmp_path / "09-new-chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 9. New")]), path)
    data = tmp_path / "timings.json"
    data.write_text(json.dumps({"budget": "cpu", "hardware": {}, "notebooks": {}}))
    assert time_notebooks.main(["--check-chapters", "--json", str(data), str(path)]) == 1
    out = capsys.readouterr().out
    assert "09-new-chapter.ipynb: not in" in out and "--write-chapters" in out
