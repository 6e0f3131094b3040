"""The workshop kit adds up: chapter times from one data file, session plans computed from it, the chapters' time
lines, the paper-reading page, the slides and the GitHub Pages workflow (issue items 5 and 6).

The browser check of the slides is in tests/test_browser.py.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from tools import exercises, slides, sync_notebooks, time_notebooks, workshop

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GUIDE = ROOT / "book" / "instructor-guide.md"


def _chapter(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def _md(text: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": tags} if tags else {})


def _code(text: str, tags: list[str] | None = None, figures: int = 0) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text, metadata={"tags": tags} if tags else {})
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"})
                    for _ in range(figures)]
    return cell


def _words(n: int) -> str:
    return " ".join(["word"] * n)


# ---- reading time and exercise labels ----

def test_reading_time_follows_the_stated_rule():
    nb = _chapter(
        _md("# 1. Title\n\n" + _words(398)),                                 # 400 words with "1" and "Title"
        _code("# setup\nimport os\n" * 30, tags=["setup"]),                   # not counted
        _code("x = 1\n# a comment\n\n" + "y = x\n" * 19, figures=2),         # 20 code lines, 2 figures
        _code("print('hidden')\n" * 50, tags=["hide-input"]),                 # input hidden: not counted
        _md("Before the exercise. " + _words(97)                              # 100 words
            + "\n\n```{admonition} Exercise 1: one thing (easy · 5 min)\n" + _words(500) + "\n```\n"),
        _code("answer = 42\n" * 40, tags=["solution", "hide-cell"]),         # not counted
        _md("## Exercises\n\n" + _words(1000)),                               # exercise section: not counted
        _code("z = 3\n" * 30),
    )
    stats = time_notebooks.reading_stats(nb)
    # 500 / 200 + 20 / 10 + 2 * 0.5 = 5.5 minutes, rounded to the nearest minute (halves up)
    assert stats == {"words": 500, "code_lines": 20, "figures": 2, "minutes": 6}
    assert "200 words a minute" in time_notebooks.READING_RULE and "10 lines a minute" in time_notebooks.READING_RULE


def test_reading_time_is_at_least_a_minute_and_rounds_to_nearest():
    assert time_notebooks.reading_stats(_chapter(_md("# T")))["minutes"] == 1
    assert time_notebooks.reading_stats(_chapter(_md(_words(300))))["minutes"] == 2     # 1.5 rounds up
    assert time_notebooks.reading_stats(_chapter(_md(_words(290))))["minutes"] == 1     # 1.45 rounds down


def test_exercise_labels_are_parsed_and_unlabelled_ones_reported():
    nb = _chapter(
        _md("Text.\n\n```{admonition} Exercise 1: the FC share on CIFAR-10 (medium · 10 min)\nDo it.\n```"),
        _md("````{admonition} Exercise 2: five layers against one 11×11 (hard · 25 min)\n```python\nx\n```\n"
            "````"),
        _md(":::{admonition} Exercise 3: no label yet\nbody\n:::"),
        _md("```{admonition} Exercise 4: a wrong label (easy, 5 min)\nbody\n```"),
        _md("```{admonition} Not an exercise (easy · 5 min)\nbody\n```"),
    )
    labelled, unlabelled = exercises(nb)
    assert labelled == [{"number": 1, "title": "the FC share on CIFAR-10", "level": "medium", "minutes": 10},
                        {"number": 2, "title": "five layers against one 11×11", "level": "hard", "minutes": 25}]
    assert unlabelled == ["Exercise 3: no label yet", "Exercise 4: a wrong label (easy, 5 min)"]


def test_chapter_without_labels_gives_zero_minutes_and_a_warning(tmp_path, capsys):
    path = tmp_path / "09-test.ipynb"
    nbformat.write(_chapter(_md("# 9. T"), _md("```{admonition} Exercise 1: unlabelled\nx\n```")), path)
    data = time_notebooks.update_content(None, [path])
    entry = data["notebooks"]["09-test"]
    assert entry["exercise_minutes"] == 0 and entry["unlabelled"] == ["Exercise 1: unlabelled"]
    assert entry["status"] == "not measured"
    assert "warning: 09-test.ipynb: 1 exercise(s) without" in capsys.readouterr().out
    assert time_notebooks.stale_content(data, [path]) == []
    nbformat.write(_chapter(_md("# 9. T"), _md("```{admonition} Exercise 1: labelled (easy · 5 min)\nx\n```")),
                   path)
    assert time_notebooks.stale_content(data, [path]) == ["09-test: exercise_minutes, exercises, unlabelled changed"]


def test_data_file_holds_the_times_of_every_chapter():
    data = time_notebooks.load_timings()
    assert data is not None, "run python tools/time_notebooks.py --from-outputs"
    assert data["reading_rule"] == time_notebooks.READING_RULE
    for path in NOTEBOOKS:
        entry = data["notebooks"].get(path.stem)
        assert entry is not None, f"{path.stem} is not in {time_notebooks.TIMINGS.name}"
        assert {"seconds", "status", "reading_minutes", "exercise_minutes", "exercises"} <= set(entry)
    assert data["pages"][workshop.PAPER_PAGE]["reading_minutes"] >= 1


def test_data_file_matches_the_notebooks():
    stale = time_notebooks.stale_content(time_notebooks.load_timings(), NOTEBOOKS)
    assert not stale, f"run python tools/time_notebooks.py --update-reading (or --from-outputs): {stale}"


# ---- the chapters' time lines (tested on copies: the real chapters are written by the lead) ----

def _timed_copies(tmp_path: Path,
                  names: tuple[str, ...] = ("01-architecture-table", "06-batch-norm-fix")) -> list[Path]:
    """Copies of chapters as they were before their time line was written (the line's cell removed)."""
    copies = []
    for name in names:
        src = ROOT / "notebooks" / f"{name}.ipynb"
        if src.exists():
            nb = nbformat.read(src, as_version=4)
            nb.cells = [c for c in nb.cells if time_notebooks.TIMES_TAG not in c.metadata.get("tags", [])]
            nbformat.write(nb, tmp_path / src.name)
            copies.append(tmp_path / src.name)
    if not copies:
        pytest.skip("no chapter to copy")
    return copies


def test_write_chapter_times_inserts_one_line_after_the_title_and_keeps_the_rest(tmp_path):
    data = time_notebooks.load_timings()
    for path in _timed_copies(tmp_path):
        before = nbformat.read(path, as_version=4)
        nb = nbformat.read(path, as_version=4)
        entry = dict(data["notebooks"][path.stem])
        assert time_notebooks.check_chapter_times(nb, entry, data, path.name), "the check must fail before writing"
        assert time_notebooks.write_chapter_times(nb, entry, data, path.stem) is True
        assert time_notebooks.check_chapter_times(nb, entry, data, path.name) == []
        assert nb.cells[1].cell_type == "markdown" and nb.cells[1].metadata["tags"] == [time_notebooks.TIMES_TAG]
        assert nb.cells[1].source == time_notebooks.chapter_line(entry, data, path.stem)
        assert nb.cells[1].source.startswith("*Time: reading about ") and "running about" in nb.cells[1].source
        assert not re.search(r"^\*\*Time\*\*:", nb.cells[0].source, re.M), "the hand-written line is replaced"
        # every other cell, its outputs and metadata included, is untouched
        assert [c for c in nb.cells[2:]] == [c for c in before.cells[1:]]
        assert nb.cells[0].source.split("\n")[0] == before.cells[0].source.split("\n")[0]
        # writing again changes nothing; a change in the data is caught, and fixed by writing again
        assert time_notebooks.write_chapter_times(nb, entry, data, path.stem) is False
        entry["reading_minutes"] += 5
        problems = time_notebooks.check_chapter_times(nb, entry, data, path.name)
        assert problems and "--write-chapters" in problems[0]
        assert time_notebooks.write_chapter_times(nb, entry, data, path.stem) is True
        assert time_notebooks.check_chapter_times(nb, entry, data, path.name) == []
        nbformat.validate(nb)


def test_time_line_moved_elsewhere_or_duplicated_is_caught_and_repaired(tmp_path):
    data = time_notebooks.load_timings()
    path = _timed_copies(tmp_path)[0]
    nb = nbformat.read(path, as_version=4)
    entry = data["notebooks"][path.stem]
    time_notebooks.write_chapter_times(nb, entry, data, path.stem)
    line = nb.cells.pop(1)
    nb.cells.insert(4, line)
    nb.cells.append(nbformat.from_dict(dict(line, id="duplicate")))
    assert any("right after the title" in p for p in time_notebooks.check_chapter_times(nb, entry, data, path.name))
    assert time_notebooks.write_chapter_times(nb, entry, data, path.stem) is True
    assert time_notebooks.check_chapter_times(nb, entry, data, path.name) == []
    assert sum(time_notebooks.TIMES_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_chapter_line_states_the_three_times():
    data = {"budget": "cpu", "hardware": {"logical_cores": 2, "gpu": None}}
    entry = {"status": "ok", "seconds": 1245.1, "reading_minutes": 32, "exercise_minutes": 35,
             "exercises": [{"number": 1}, {"number": 2}, {"number": 3}]}
    assert time_notebooks.chapter_line(entry, data) == (
        "*Time: reading about 32 min · running about 21 min (`cpu` budget, measured on a 2-core CPU) · "
        "exercises about 35 min (3 exercises)*")
    short = dict(entry, seconds=36.0, exercises=[], exercise_minutes=0)
    assert "running about 36 s" in time_notebooks.chapter_line(short, data)
    assert "exercises" not in time_notebooks.chapter_line(short, data)
    assert "running" not in time_notebooks.chapter_line(dict(entry, status="not measured"), data)


def test_cli_writes_and_checks_the_lines_of_copies(tmp_path):
    originals = {p.name: p.read_text() for p in (ROOT / "notebooks").glob("*.ipynb")}
    copies = _timed_copies(tmp_path)
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE.read_text())
    json_path = tmp_path / "timings.json"
    shutil.copy(time_notebooks.TIMINGS, json_path)
    args = ["--json", str(json_path), "--guide", str(guide)] + [str(p) for p in copies]
    assert time_notebooks.main(["--check-chapters"] + args) == 1
    assert time_notebooks.main(["--update-reading", "--write-chapters"] + args) == 0
    assert time_notebooks.main(["--check-chapters"] + args) == 0
    assert {p.name: p.read_text() for p in (ROOT / "notebooks").glob("*.ipynb")} == originals  # copies only
    # the reading time of a written chapter does not count its own time line
    assert time_notebooks.stale_content(time_notebooks.load_timings(json_path), copies) == []


def test_every_chapter_carries_its_time_line():
    assert time_notebooks.main(["--check-chapters"]) == 0, \
        "run python tools/time_notebooks.py --from-outputs --write-chapters"


# ---- session plans ----

@pytest.mark.parametrize("plan", workshop.PLANS, ids=lambda p: p.key)
def test_plan_fits_its_session(plan: workshop.Plan):
    data = time_notebooks.load_timings()
    rows = workshop.plan_rows(plan, data)
    total = sum(r.minutes for r in rows)
    assert total == workshop.total_minutes(plan, data)
    assert total <= plan.length, (f"plan {plan.key!r} takes {total} minutes, more than its {plan.length}: "
                                  + "; ".join(f"{r.minutes} {r.slot.what[:40]}" for r in rows))
    assert all(r.minutes >= 0 for r in rows)
    # the rows follow each other without gaps
    assert [r.start for r in rows] == [sum(x.minutes for x in rows[:i]) for i in range(len(rows))]


@pytest.mark.parametrize("plan", workshop.PLANS, ids=lambda p: p.key)
def test_no_learner_waits_for_a_run(plan: workshop.Plan):
    """A chapter read and run in a slot may run at most as long as it takes to read (after the break it was
    started before); longer runs must be started before a break or demonstrated from the outputs."""
    data = time_notebooks.load_timings()
    for i, slot in enumerate(plan.slots):
        if slot.kind != "chapter":
            continue
        overlap = workshop._break_before(plan, i) if slot.after_break else 0
        for stem in slot.chapters:
            entry = data["notebooks"][stem]
            left = max(0, workshop.run_minutes(entry) - overlap)
            assert left <= entry["reading_minutes"], (
                f"plan {plan.key!r}: {stem} runs {left} min in its slot but reads in {entry['reading_minutes']}: "
                "start it before a break, or demonstrate it from the committed outputs")


def test_plans_cover_what_the_issue_asks():
    plans = {p.key: p for p in workshop.PLANS}
    short, half, gpus = plans["90-minutes"], plans["half-day"], plans["many-gpus"]
    assert short.length == 90 and gpus.length == 90 and half.length == 240          # 3 h 45 plus a 15-min break
    assert sorted(short.chapters()[:4]) == [workshop.TABLE, workshop.NAIVE, workshop.REFACTORED, workshop.SHAPES]
    assert {s.chapters for s in short.slots if s.kind == "demo"} >= {(workshop.FAILURE, workshop.BATCH_NORM)}
    assert [s.minutes for s in half.slots if s.kind == "break"] == [15]
    assert all(any(s.kind == "paper" for s in p.slots) for p in (short, half))
    assert gpus.chapters() == [workshop.MANY_GPUS]
    stems = {p.stem for p in NOTEBOOKS}
    assert {c for p in workshop.PLANS for c in p.chapters()} <= stems


@pytest.mark.parametrize("plan", workshop.PLANS, ids=lambda p: p.key)
def test_every_exercise_slot_gets_an_exercise(plan: workshop.Plan):
    rows = workshop.plan_rows(plan, time_notebooks.load_timings())
    empty = [r.slot.what for r in rows if (r.slot.exercises is None or r.slot.exercises) and not r.chosen]
    assert not empty, f"plan {plan.key!r}: no exercise fits in {empty}"


SYNTHETIC = {"notebooks": {
    "01-a": {"status": "ok", "seconds": 30.0, "reading_minutes": 20, "exercises": [
        {"number": 1, "level": "medium", "minutes": 10}, {"number": 2, "level": "easy", "minutes": 10},
        {"number": 3, "level": "easy", "minutes": 5}, {"number": 4, "level": "hard", "minutes": 25}]},
    "05-b": {"status": "ok", "seconds": 1250.0, "reading_minutes": 15, "exercises": [
        {"number": 1, "level": "easy", "minutes": 10}]}},
    "pages": {workshop.PAPER_PAGE: {"reading_minutes": 4}}}


def test_slot_minutes_follow_the_rules():
    plan = workshop.Plan("t", "T", 120, "intro", (
        workshop.Slot("fixed", "welcome", minutes=5),
        workshop.Slot("paper", "paper", minutes=3),
        workshop.Slot("chapter", "a", ("01-a",), exercises=16),
        workshop.Slot("break", "break", minutes=10),
        workshop.Slot("chapter", "b", ("05-b",), after_break=True),
        workshop.Slot("chapter", "b again", ("05-b",)),
        workshop.Slot("exercises", "the rest", ("01-a", "05-b"), exercises=None),
    ))
    rows = workshop.plan_rows(plan, SYNTHETIC)
    minutes = [r.minutes for r in rows]
    assert minutes[:2] == [5, 4 + 3]
    # max(reading 20, running 1) + the easiest exercises that fit 16 minutes: 3 (easy, 5) and 2 (easy, 10)
    assert minutes[2] == 20 + 15 and [ex["number"] for _, ex in rows[2].chosen] == [2, 3]
    assert minutes[3] == 10
    assert minutes[4] == 15 and "running 21 − 10 of break = 11" in rows[4].how     # run 21 min, 10 in the break
    assert minutes[5] == 21 and "max(reading 15, running 21)" in rows[5].how        # the learner waits for it
    # what is left: 120 - (5 + 7 + 35 + 10 + 15 + 21) = 27 minutes, filled with the exercises not chosen yet,
    # easiest first: 05-b's easy one (10), then 01-a's medium one (10); the hard one (25) no longer fits
    assert [(stem, ex["number"]) for stem, ex in rows[6].chosen] == [("01-a", 1), ("05-b", 1)]
    assert minutes[6] == 20 and sum(minutes) == 113


def test_picked_exercises_and_hands_on_minutes():
    plan = workshop.Plan("t", "T", 90, "intro", (
        workshop.Slot("demo", "show a", ("01-a",), minutes=10),
        workshop.Slot("exercises", "write 4 and 1", picks=(("01-a", 4), ("01-a", 1))),
        workshop.Slot("chapter", "b", ("05-b",)),
        workshop.Slot("exercises", "the rest", ("01-a",), exercises=None),
    ))
    rows = workshop.plan_rows(plan, SYNTHETIC)
    assert [(s, e["number"]) for s, e in rows[1].chosen] == [("01-a", 4), ("01-a", 1)] and rows[1].minutes == 35
    # what is left (90 - 10 - 35 - 21 = 24) never takes a picked exercise again: 2 (easy, 10) and 3 (easy, 5)
    assert [e["number"] for _, e in rows[3].chosen] == [2, 3]
    # hands-on: the exercises (35 + 15) and the measured run of the chapter the learners run (21 minutes)
    assert workshop.hands_on_minutes(plan, SYNTHETIC) == 35 + 15 + 21
    assert "for 71 of the 90 minutes" in workshop.render_plan(plan, SYNTHETIC)
    wrong = workshop.Plan("t", "T", 90, "", (workshop.Slot("exercises", "x", picks=(("01-a", 9),)),))
    with pytest.raises(ValueError, match="01-a has no exercise 9"):
        workshop.plan_rows(wrong, SYNTHETIC)
    with pytest.raises(ValueError, match="only an exercises slot"):
        workshop.Slot("demo", "x", picks=(("01-a", 1),))


def test_the_90_minute_plan_is_at_least_half_hands_on():
    """Learners run or write code for at least half of the 90-minute session (computed from the timings)."""
    data = time_notebooks.load_timings()
    short = next(p for p in workshop.PLANS if p.key == "90-minutes")
    assert workshop.hands_on_minutes(short, data) * 2 >= short.length
    assert all(row.chosen for row in workshop.plan_rows(short, data) if row.slot.picks)


def test_choose_exercises_is_easiest_first_and_never_over_budget():
    chosen = workshop.choose_exercises(SYNTHETIC, ["01-a", "05-b"], 27)
    assert [(s, e["number"]) for s, e in chosen] == [("01-a", 2), ("01-a", 3), ("05-b", 1)]
    assert workshop.choose_exercises(SYNTHETIC, ["01-a"], 4) == []
    assert workshop.choose_exercises({}, ["01-a"], 60) == []


def test_a_plan_that_does_not_fit_says_so():
    plan = workshop.Plan("t", "T", 30, "intro", (workshop.Slot("chapter", "a", ("01-a",)),
                                                workshop.Slot("demo", "b", ("05-b",), minutes=15)))
    assert workshop.total_minutes(plan, SYNTHETIC) == 35
    assert "**does not fit**" in workshop.render_plan(plan, SYNTHETIC)


def test_plan_definitions_are_checked():
    with pytest.raises(ValueError, match="slot kind"):
        workshop.Slot("lecture", "x")
    with pytest.raises(ValueError, match="what is left"):
        workshop.Slot("demo", "x", exercises=None)
    two = workshop.Plan("t", "T", 30, "", (workshop.Slot("exercises", "a", ("01-a",), exercises=None),
                                          workshop.Slot("exercises", "b", ("01-a",), exercises=None)))
    with pytest.raises(ValueError, match="only one slot"):
        workshop.plan_rows(two, SYNTHETIC)


def test_guide_tables_are_generated_from_the_data():
    text = GUIDE.read_text()
    assert workshop.START in text and workshop.END in text and time_notebooks.START in text
    data = time_notebooks.load_timings()
    assert time_notebooks.render_page(text, data) == text, "run python tools/time_notebooks.py --render"
    block = text.split(workshop.START, 1)[1].split(workshop.END, 1)[0]
    assert block.strip() == workshop.render_plans(data)
    for plan in workshop.PLANS:
        assert plan.title in block and f"**{workshop.total_minutes(plan, data)}**" in block


def test_stale_guide_fails_the_check(tmp_path):
    guide = tmp_path / "guide.md"
    text = GUIDE.read_text()
    start = text.index(workshop.START) + len(workshop.START)
    guide.write_text(text[:start] + "\n| 0:00-1:30 | 90 | hand-edited |" + text[start:])
    assert time_notebooks.main(["--check", "--guide", str(guide)] + [str(p) for p in NOTEBOOKS]) == 1
    no_plans = tmp_path / "old.md"
    no_plans.write_text(text.replace(workshop.START, "").replace(workshop.END, ""))
    assert time_notebooks.main(["--check", "--guide", str(no_plans)]) == 1


def test_guide_says_what_the_issue_asks():
    text = GUIDE.read_text()
    assert "measured on a GPU" not in text, "the guide must not point to a GPU timing table that does not exist"
    assert "VGG_BOOK_BUDGET=gpu" in text and "make student-copies" in text and "`student/`" in text
    assert "{doc}`reading-the-paper`" in text and "make slides" in text
    assert "max(reading, running)" in text


# ---- the paper-reading page ----

def test_reading_the_paper_page_is_in_the_toc_and_covers_the_paper():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p["caption"] == "Teaching and reference")
    assert {"file": workshop.PAPER_PAGE} in part["chapters"]
    text = (ROOT / f"{workshop.PAPER_PAGE}.md").read_text()
    for needle in ("Section 2.1", "Table 1", "Table 2", "Section 3.1", "Table 3", "Section 2.3", "Section 3.2",
                   "What to skip", "checklist", "appendix"):
        assert needle.lower() in text.lower(), needle
    # facts from the paper (v6), as the page states them
    for fact in ("224×224", "stride 1 and padding 1", "133 to 144 million", "batch size 256", "momentum 0.9",
                 "5·10⁻⁴", "dropout 0.5", "74 epochs", "3.75×", "27C² against 49C²"):
        assert fact in text, fact
    sections = set(re.findall(r"sec(?:tion|\.) (\d\.\d)", text, flags=re.I))
    assert sections <= {"2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "4.1"}, sections
    assert len(text.split()) < 1200, "one page"


# ---- slides ----

def test_slide_budget_is_about_one_slide_per_minute_of_talk():
    def row(kind: str, minutes: int) -> workshop.Row:
        return workshop.Row(workshop.Slot(kind, "x", minutes=minutes), 0, minutes, "")
    assert slides.slide_budget(row("demo", 10)) == 12 and slides.slide_budget(row("demo", 5)) == 6
    assert slides.slide_budget(row("paper", 15)) == 18 and slides.slide_budget(row("fixed", 5)) == 6
    for kind in ("chapter", "exercises", "break"):                # the learners work: one slide, what to do
        assert slides.slide_budget(row(kind, 40)) == 1


def test_a_chapter_gives_its_title_and_its_tagged_cells_with_the_prose_as_notes(tmp_path):
    chapter = _chapter(_md("# 9. A chapter\n\nIntro prose."), _code("setup()", tags=["setup"]),
                       _md("## A section\n\nWhy the next cell matters."),
                       _code("x = 1\nprint(x)", tags=["slide"]), _md("What the output says."),
                       _code("untagged()"), _md("## Other"), _code("\n".join(["y = 2"] * 9), tags=["slide"]),
                       _code("solution()", tags=["solution", "slide"]))
    nbformat.write(chapter, tmp_path / "c.ipynb")
    cells = slides.chapter_slides(tmp_path / "c.ipynb")
    kinds = [c.metadata["slideshow"]["slide_type"] for c in cells]
    assert kinds == ["slide", "notes", "slide", "-", "notes", "slide", "-", "notes"]
    assert cells[0].source == "# 9. A chapter" and "Intro prose." in cells[1].source
    assert cells[2].source == "### A section" and cells[3].source == "x = 1\nprint(x)"
    assert "Why the next cell matters." in cells[4].source and "What the output says." in cells[4].source
    assert "untagged()" not in "".join(c.source for c in cells)
    assert cells[5].source == "### Other" and "slides-hide-input" in cells[6].metadata["tags"]   # 9 lines: output only
    assert "setup()" not in "".join(c.source for c in cells) and "solution()" not in "".join(c.source for c in cells)


def test_paper_slides_show_headings_and_leads_and_keep_the_text_in_notes(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Title\n\nIntro.\n\n## First\n\nA paragraph.\n\n- **Lead one.** Long detail.\n"
                    "- **Lead two.** More detail.\n\n## Second\n\n1. Plain item (sec. 2.1). Its detail.\n")
    cells = slides.page_slides(page)
    shown = [c.source for c in cells if c.metadata["slideshow"]["slide_type"] == "slide"]
    notes = " ".join(c.source for c in cells if c.metadata["slideshow"]["slide_type"] == "notes")
    assert shown == ["# Title", "## First\n\n- **Lead one.**\n- **Lead two.**", "## Second\n\n1. Plain item (sec. 2.1)."]
    assert "Long detail." in notes and "A paragraph." in notes and "Intro." in notes and "Its detail." in notes


DECKS = [(plan, i) for plan in workshop.PLANS for i in range(len(plan.slots))]


@pytest.mark.parametrize("plan, index", DECKS, ids=[slides.deck_name(p, i) for p, i in DECKS])
def test_every_deck_fits_its_slot(plan: workshop.Plan, index: int):
    rows = workshop.plan_rows(plan, time_notebooks.load_timings())
    nb = slides.slot_deck(plan, index, rows)
    assert 1 <= slides.count_slides(nb) <= slides.slide_budget(rows[index])
    assert not any({"setup", "solution"} & set(c.metadata.get("tags", [])) for c in nb.cells)
    assert sync_notebooks.setup_source() not in [c.source for c in nb.cells]
    assert plan.slots[index].what[:30] in nb.cells[2 if index == 0 else 0].source.replace("\n", " ")
    for cell in nb.cells:                                       # no test marker, no MyST left
        assert "NBVAL" not in cell.source and "{doc}" not in cell.source and "```{" not in cell.source
    visible = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata["slideshow"]["slide_type"] != "notes"]
    for cell in visible:         # the prose is in the notes; a slide holds at most a list (the checklist: 125)
        words = len(re.findall(r"[A-Za-z]{2,}", re.sub(r"<[^>]+>", " ", cell.source)))
        assert words <= 130, f"{slides.deck_name(plan, index)}: {words} words on a slide: {cell.source[:80]!r}"
    if plan.slots[index].kind == "demo":
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(slides.SLIDE_TAG in c.metadata["tags"] for c in code)
        assert sum(c.metadata["slideshow"]["slide_type"] == "notes" for c in nb.cells) >= len(code)
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    nbformat.validate(nb)


def test_the_chapters_tag_slides_for_every_demo():
    for plan in workshop.PLANS:
        for slot in plan.slots:
            for stem in slot.chapters if slot.kind == "demo" else ():
                nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
                assert any(slides.SLIDE_TAG in c.metadata.get("tags", []) for c in nb.cells), stem


def test_myst_becomes_plain_markdown_without_network():
    text = ("# 1. T\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://x)\n\n"
            "See {doc}`the guide <../book/instructor-guide>` and {doc}`setup`.\n\n"
            "```{admonition} Exercise 1: a thing (easy · 5 min)\nDo $x^2$.\n\n```python\ncode\n```\n```\n\n"
            "Cost: `$HOME` and $\\mu_B$, then\n\n$$\\frac{a}{b}$$\n")
    out = slides.plain_markdown(text)
    assert "colab-badge" not in out and "{doc}" not in out and "```{" not in out
    assert "the guide" in out and "setup" in out
    assert "> **Exercise 1: a thing (easy · 5 min)**" in out and "> ```python" in out
    assert "`$HOME`" in out                                       # code is left alone
    assert out.count("<math") == 3 and 'display="block"' in out


def test_build_writes_offline_decks_and_stops_at_a_deck_over_budget(tmp_path, monkeypatch):
    written = slides.build(tmp_path, ["many-gpus"])
    plan = next(p for p in workshop.PLANS if p.key == "many-gpus")
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [slides.deck_name(plan, i)
                                                                      for i in range(len(plan.slots))]
    html = written[-1].read_text()
    assert (tmp_path / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (tmp_path / "reveal.js" / "plugin" / "notes" / "notes.js").is_file()
    assert 'src="../reveal.js/dist/reveal.js"' in html and "Reveal.initialize" in html
    assert "width: 1280" in html and "height: 800" in html and '<aside class="notes">' in html
    remote = re.findall(r"""<(?:script|link|img)[^>]+(?:src|href)=["'](https?:)?//""", html)
    assert not remote, "a deck must load nothing from the network"
    assert "require.js" not in html and "mathjax" not in html.lower()
    index = (tmp_path / "index.html").read_text()
    assert all(slides.deck_name(plan, i) in index for i in range(len(plan.slots))) and "of at most" in index
    with pytest.raises(SystemExit, match="no such plan"):
        slides.build(tmp_path, ["nope"])
    monkeypatch.setattr(slides, "slide_budget", lambda row: 1)
    with pytest.raises(SystemExit, match=r"many-gpus/01-fixed.slides.html: 3 slides .* tag fewer cells"):
        slides.build(tmp_path, ["many-gpus"])


def test_the_answer_key_lists_every_exercise_and_self_check_and_is_linked():
    assert (ROOT / "book" / "answer-key.md").read_text() == workshop.answer_key(), \
        "run python tools/workshop.py --answer-key"
    text = workshop.answer_key()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        found, _ = time_notebooks.exercises(nb)
        assert all(f"Exercise {ex['number']}: {ex['title']}" in text for ex in found), path.stem
        assert workshop._self_check_questions(nb) >= 1 and f"{path.stem}.ipynb#self-check" in text
    assert "book/answer-key" in (ROOT / "_toc.yml").read_text()
    guide = GUIDE.read_text()
    assert "{doc}`answer-key`" in guide and "<learner-checklist>" in guide and "(learner-checklist)=" in guide


def test_make_slides_target():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^slides: .*\n\t\$\(PY\) tools/slides\.py", makefile, re.M)
    assert "slides" in re.search(r"^\.PHONY:.*$", makefile, re.M).group(0)
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "sphinx-revealjs" in dev and "latex2mathml" in dev and "nbconvert" in dev


# ---- publishing: the GitHub Pages workflow ----

def test_repository_url_matches_the_colab_badges():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)/?", config["repository"]["url"])
    assert match, config["repository"]["url"]
    slug, branch = "/".join(match.groups()), config["repository"]["branch"]
    assert branch == "main"                                     # the branch the workflow publishes
    for path in NOTEBOOKS:
        badges = re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/(\S+?)\)",
                            nbformat.read(path, as_version=4).cells[0].source)
        assert badges == [(slug, branch, f"notebooks/{path.name}")], f"{path.name}: {badges}"
