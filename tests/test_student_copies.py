"""Student copies (tools/student_copies.py): no solution code, no outputs, and they still run."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from tools import student_copies

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _solution_lines(nb: nbformat.NotebookNode) -> set[str]:
    """The meaningful lines of every solution (not comments, not a bare name or bracket)."""
    lines = set()
    for cell in nb.cells:
        if student_copies.is_solution(cell):
            for line in cell.source.splitlines():
                s = line.strip()
                if len(s) > 3 and not s.startswith("#") and s not in {"pass", "else:", "try:", "return"}:
                    lines.add(s)
    return lines


def _all_code(nb: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_has_no_solution_and_no_output(path: Path, tmp_path: Path):
    written = student_copies.write_student_copies([path], tmp_path)
    copy_path = tmp_path / path.name
    assert written[copy_path] >= 1, f"{path.name}: no solution cell found (tag them 'solution')"
    original = nbformat.read(path, as_version=4)
    copy = nbformat.read(copy_path, as_version=4)
    nbformat.validate(copy)
    assert len(copy.cells) == len(original.cells)
    # Lines that also appear outside the solutions (e.g. a shared import) are not solution code.
    outside = "\n".join(c.source for c in original.cells if c.cell_type == "code" and not student_copies.is_solution(c))
    leaked = [line for line in _solution_lines(original) if line not in outside and line in _all_code(copy)]
    assert not leaked, f"solution code left in the student copy of {path.name}: {leaked[:5]}"
    for cell in copy.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            if student_copies.is_solution(cell):
                assert cell.source.startswith(student_copies.PLACEHOLDER.strip())


def test_student_copy_detects_leaks(tmp_path: Path):
    """The leak check above can fail: a solution copied verbatim is found."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("answer = sum(range(10))", metadata={"tags": ["solution", "hide-cell"]},
                                          outputs=[nbformat.v4.new_output("stream", text="x")], execution_count=1)]
    copy, hidden = student_copies.student_copy(nb)
    assert hidden == 1 and _solution_lines(nb) == {"answer = sum(range(10))"}
    assert "answer = sum(range(10))" not in _all_code(copy) and copy.cells[0].outputs == []
    assert "answer = sum(range(10))" in _all_code(nb)  # the original is untouched


def test_cli_writes_every_notebook(tmp_path: Path):
    if not NOTEBOOKS:
        pytest.skip("no notebook yet")
    out = tmp_path / "student"
    student_copies.main(["--out", str(out)])
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_student_copy_runs_top_to_bottom(path: Path, tmp_path: Path):
    """Run All on a student copy (smoke budget) ends without an error: every build-it check says "not attempted
    yet" instead of stopping the notebook, and the cells after it run as in the chapter."""
    from nbclient import NotebookClient

    student_copies.write_student_copies([path], tmp_path)
    nb = nbformat.read(tmp_path / path.name, as_version=4)
    os.environ.setdefault("VGG_BOOK_BUDGET", "smoke")
    # Run next to the original so relative paths in the chapter resolve as they do for learners.
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [f"cell {i}: {out.ename}: {out.evalue[:300]}" for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", [])
              for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"Run All stops in the student copy of {path.name}:\n" + "\n".join(errors)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        if student_copies.is_solution(cell) and "not_attempted(" in cell.source:
            said = "".join(o.get("text", "") for o in code[i + 1].outputs)
            assert "not attempted yet: check_" in said, f"{path.name}: the check after cell {i} said {said!r}"
    assert all(c.execution_count for c in code), f"{path.name}: a cell did not run"


def test_a_build_it_exercise_gets_stand_ins_for_the_checked_names():
    solution = "def conv_params(c_in, c_out, k):\n    return 0\nhelper = 3\n"
    assert student_copies.checked_names(solution, "check_conv_params(conv_params)\nprint(helper)") == ["conv_params"]
    assert student_copies.checked_names(solution, "print(conv_params(3, 64, 3))") == []     # not a check
    assert student_copies.placeholder([]) == student_copies.PLACEHOLDER.strip()
    cell = student_copies.placeholder(["shard"])
    assert cell.endswith("shard = not_attempted('shard')") and all(len(line) <= 88 for line in cell.splitlines())


def test_committed_student_copies_are_up_to_date():
    problems = student_copies.stale_copies(NOTEBOOKS)
    assert not problems, "student/ is stale: run `make student-copies` and commit:\n" + "\n".join(problems)


def test_stale_check_can_fail(tmp_path: Path):
    student_copies.write_student_copies(NOTEBOOKS[:2], tmp_path)
    assert student_copies.stale_copies(NOTEBOOKS[:2], tmp_path) == []
    first = tmp_path / NOTEBOOKS[0].name
    nb = nbformat.read(first, as_version=4)
    nb.cells[-1].source += "\nan edit made after the copy"
    nbformat.write(nb, first)
    (tmp_path / NOTEBOOKS[1].name).unlink()
    (tmp_path / "99-removed.ipynb").write_text(first.read_text())
    assert sorted(student_copies.stale_copies(NOTEBOOKS[:2], tmp_path)) == sorted([
        f"{NOTEBOOKS[0].name}: out of date", f"{NOTEBOOKS[1].name}: missing",
        "99-removed.ipynb: its chapter is gone"])
    assert student_copies.main(["--check", "--out", str(tmp_path), *map(str, NOTEBOOKS[:2])]) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_student_copy_opens_itself_in_colab(path: Path):
    """Its badge opens student/NN.ipynb; a line under it links the full chapter; solutions are open cells."""
    from tools.sync_notebooks import colab_url

    copy = nbformat.read(student_copies.STUDENT_DIR / path.name, as_version=4)
    intro = copy.cells[0].source
    assert colab_url(student_copies.STUDENT_DIR / path.name) in intro and colab_url(path) in intro
    assert "student/" in colab_url(student_copies.STUDENT_DIR / path.name)
    for cell in copy.cells:
        if student_copies.is_solution(cell):
            assert "cellView" not in cell.metadata      # a cell to write in, visible
