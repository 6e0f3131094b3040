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


def _timings(native_bf16: bool = True) -> dict:
    hw = {"cpu": "AMD EPYC", "logical_cores": 2, "python": "3.11.7", "torch": "2.14.1", "cpu_capability": "AVX512",
          "native_bf16": native_bf16, "gpu": None}
    entry = {"seconds": 45.0, "status": "ok", "error": None, "date": "2026-12-06", "reading_minutes": 27,
             "exercise_minutes": 45, "exercises": [{"title": "x", "minutes": 45}], "unlabelled": []}
    return {"budget": "cpu", "date": "2026-12-06T23:07:40+00:00", "hardware": hw,
            "notebooks": {"08-training-fast": entry}}


def _slow_block() -> dict:
    return {"budget": "cpu", "date": "2026-12-07T01:00:00+00:00",
            "hardware": {"cpu": "Intel(R) Xeon(R) Processor", "logical_cores": 2, "torch": "2.14.1",
                         "cpu_capability": "AVX512", "native_bf16": False},
            "notebooks": {"08-training-fast": {"seconds": 130.0, "status": "ok", "error": None}}}


def test_chapter_times_name_the_precision_and_the_time_without_native_bf16():
    from tools import time_notebooks

    data = _timings()
    entry = data["notebooks"]["08-training-fast"]
    line = time_notebooks.chapter_line(entry, data, "08-training-fast")
    assert "running about 45 s (`cpu` budget, measured on a 2-core CPU with native bfloat16)" in line
    data["without_bf16"] = _slow_block()
    line = time_notebooks.chapter_line(entry, data, "08-training-fast")
    assert "with native bfloat16; about 2 min on a 2-core CPU without it)" in line
    assert "without it" not in time_notebooks.chapter_line(entry, data, "09-other")   # not measured there
    data["without_bf16"]["budget"] = "smoke"                                            # another budget: not shown
    assert "without it" not in time_notebooks.chapter_line(entry, data, "08-training-fast")


def test_the_guide_table_gets_a_column_for_the_cpu_without_native_bf16(monkeypatch):
    from tools import time_notebooks

    monkeypatch.setattr(time_notebooks, "toc_notebooks", lambda: ["notebooks/08-training-fast"])
    data = _timings()
    assert "without native bf16" not in time_notebooks.render_table(data)
    data["without_bf16"] = _slow_block()
    table = time_notebooks.render_table(data)
    assert "| run time (m:ss) | seconds | without native bf16 (m:ss) |" in table
    assert "| 0:45 | 45.0 | 2:10 |" in table and "Intel(R) Xeon(R) Processor (AVX512)" in table
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in rows}) == 1                    # every row has every column


def test_without_bf16_refuses_a_cpu_with_native_bf16_and_keeps_the_committed_times(tmp_path, monkeypatch, capsys):
    import json

    from tools import time_notebooks

    data = tmp_path / "timings.json"
    data.write_text(json.dumps(_timings()))
    guide = tmp_path / "guide.md"
    guide.write_text(f"# Guide\n\n{time_notebooks.START}\nold\n{time_notebooks.END}\n")
    chapter = tmp_path / "08-training-fast.ipynb"
    import nbformat
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 8. T")]), chapter)
    monkeypatch.setattr(time_notebooks, "hardware", lambda data_dir=None: {**_timings()["hardware"]})
    with pytest.raises(SystemExit, match="has it"):
        time_notebooks.main(["--without-bf16", "--json", str(data), "--guide", str(guide), str(chapter)])
    monkeypatch.setattr(time_notebooks, "hardware", lambda data_dir=None: {**_slow_block()["hardware"]})
    monkeypatch.setattr(time_notebooks, "time_notebook",
                        lambda path, budget, timeout, data_dir=None: {"seconds": 130.0, "status": "ok", "error": None})
    assert time_notebooks.main(["--without-bf16", "--json", str(data), "--guide", str(guide), str(chapter)]) == 0
    saved = json.loads(data.read_text())
    assert saved["notebooks"] == _timings()["notebooks"]                  # the committed runs' times untouched
    assert saved["without_bf16"]["notebooks"]["08-training-fast"]["seconds"] == 130.0
    assert saved["without_bf16"]["hardware"]["native_bf16"] is False
    assert time_notebooks.main(["--render", "--json", str(data), "--guide", str(guide), str(chapter)]) == 0
    assert json.loads(data.read_text())["without_bf16"] == saved["without_bf16"]   # kept by the other commands
    assert "2:10" in guide.read_text()
    writes = []
    real_write = time_notebooks._write_json
    monkeypatch.setattr(time_notebooks, "_write_json", lambda path, d: (writes.append(dict(d)), real_write(path, d)))
    assert time_notebooks.main(["--update-reading", "--json", str(data), "--guide", str(guide), str(chapter)]) == 0
    assert len(writes) == 1 and writes[0]["without_bf16"] == saved["without_bf16"]   # one write, with them in it
    with pytest.raises(SystemExit):
        time_notebooks.main(["--without-bf16", "--from-outputs", "--json", str(data), str(chapter)])
    assert "give it alone" in capsys.readouterr().err
