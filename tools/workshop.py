"""The workshop's session plans, as data, with minutes computed from the measured chapter times.

Usage:
    python tools/workshop.py                 # print every plan with its minutes; exit 1 when one does not fit
    python tools/workshop.py --answer-key    # write book/answer-key.md from the chapters

Every plan is a list of slots. The minutes of a slot come from ``book/_data/notebook_timings.json`` (written
by ``tools/time_notebooks.py``: reading time, run time and exercise labels per chapter) by these rules:

- **chapter** (learners read and run it): ``max(reading, running)`` per chapter, because a learner reads while
  the cells run, plus the exercises chosen for the slot. The running time is the measured ``cpu``-budget run,
  rounded up to whole minutes; a run started before the break counts only what is left of it after the break.
- **exercises**: the slot's exercise budget is filled with the chapters' labelled exercises, easiest first
  (then shortest, then in chapter order), each taken while it still fits. A budget of ``None`` means "what is
  left of the session", so a plan stays within its length when a chapter's reading time grows.
- **paper**: the reading time of ``book/reading-the-paper.md`` plus the slot's own minutes with the paper open.
- **demo**, **fixed** and **break**: the minutes the plan gives them (an instructor's demonstration from the
  committed outputs, a welcome, a wrap-up, a break).

The instructor guide's plan tables, between ``% workshop-plans:start`` and ``% workshop-plans:end``, are
generated from these plans (``python tools/time_notebooks.py --render``), and ``tools/slides.py`` builds one
slide deck per plan.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))            # run as a script: import tools from this checkout

from tools import LEVELS, exercises, load_timings  # noqa: E402

START = "% workshop-plans:start (generated from tools/workshop.py and book/_data/notebook_timings.json)"
END = "% workshop-plans:end"
PAPER_PAGE = "book/reading-the-paper"
KINDS = ("fixed", "paper", "chapter", "demo", "exercises", "break")


@dataclass(frozen=True)
class Slot:
    """One slot of a session plan.

    Attributes:
        kind: one of ``KINDS`` (see the module's docstring for how each one's minutes are computed).
        what: what happens, in a few words (the chapters and chosen exercises are added when shown).
        chapters: chapter notebooks' stems, e.g. ``("01-architecture-table",)``.
        minutes: the minutes of a fixed, demo or break slot; the minutes with the paper open for a paper slot.
        exercises: the exercise budget in minutes of a chapter or exercises slot; ``None``: what is left.
        after_break: a chapter slot whose runs the learners start before the preceding break.
        picks: an exercises slot's exercises, named ``(chapter stem, number)``, instead of "easiest first"; their
            minutes come from the timings data.
    """

    kind: str
    what: str
    chapters: tuple[str, ...] = ()
    minutes: int = 0
    exercises: Optional[int] = 0
    after_break: bool = False
    picks: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"slot kind must be one of {KINDS}; got {self.kind!r}")
        if self.exercises is None and self.kind not in ("chapter", "exercises"):
            raise ValueError(f"only chapter and exercises slots can take what is left; got a {self.kind} slot")
        if self.picks and self.kind != "exercises":
            raise ValueError(f"only an exercises slot names its exercises (picks); got a {self.kind} slot")


@dataclass(frozen=True)
class Plan:
    """A session plan.

    Attributes:
        key: short name, used for the slide deck's file name (``_build/slides/<key>.slides.html``).
        title: the heading in the instructor guide.
        length: the session's length in minutes, breaks included.
        intro: one or two sentences shown under the heading.
        slots: the slots, in order.
    """

    key: str
    title: str
    length: int
    intro: str
    slots: tuple[Slot, ...] = field(default_factory=tuple)

    def chapters(self) -> list[str]:
        """The chapters the session shows (read, run or demonstrated), in order, each once."""
        seen: list[str] = []
        for slot in self.slots:
            if slot.kind in ("chapter", "demo"):
                seen += [c for c in slot.chapters if c not in seen]
        return seen


# The chapters the plans use, named by topic (the file names carry the chapter numbers, which change)
TABLE, NAIVE, REFACTORED, SHAPES = ("01-architecture-table", "02-naive-model", "03-refactored-model",
                                    "04-shape-checks")
FAILURE, BATCH_NORM, MANY_GPUS = "05-ten-percent-failure", "06-batch-norm-fix", "10-many-gpus"

PLANS: tuple[Plan, ...] = (
    Plan("90-minutes", "90 minutes: from the paper to a verified model", 90,
         "Chapters 1 to 4 on any laptop, as short demonstrations (the slides of each slot) followed by the "
         "learners writing that chapter's build-it exercise in its student copy: they open the copy, Run All, "
         "then write the function and run its check. The training chapters do not fit in 90 minutes on CPUs: "
         "chapters 5 and 6 are a teaser, shown from their committed outputs.",
         (Slot("fixed", "Welcome; everyone opens chapter 1's student copy (Colab or local) and runs its setup "
                        "cell (check the printed device and budget)", minutes=5),
          Slot("paper", "How to read a paper for implementation: the one-page guide, with the paper open "
                        "at section 2.1 and Table 1, presented by the instructor"),
          Slot("demo", "Table 1 as data, the parameter counts of Table 2, and why three 3x3 layers beat one "
                       "7x7 (instructor)", (TABLE,), minutes=5),
          Slot("exercises", "Count the parameters yourself: Run All in chapter 1's student copy, then write "
                            "the two functions and run their check", picks=((TABLE, 1),)),
          Slot("demo", "The naive model written out by hand and its three problems; the config-driven builder "
                       "that replaces it, proved equal to torchvision's (instructor)", (NAIVE, REFACTORED), minutes=10),
          Slot("exercises", "Write make_layers yourself: Run All in chapter 3's student copy, then write it and "
                            "run its check", picks=((REFACTORED, 3),)),
          Slot("demo", "Shape checks and the parameter count against Table 2; three bugs and which check "
                       "catches each (instructor)", (SHAPES,), minutes=5),
          Slot("exercises", "Chapter 4's student copy: Run All, then the exercises, easiest first, as many as "
                            "the time left allows", (SHAPES,), exercises=None),
          Slot("demo", "A teaser for the next session: stuck at 10% and the batch-norm fix, from the rendered "
                       "book (instructor)", (FAILURE, BATCH_NORM), minutes=5))),
    Plan("half-day", "Half day (3 hours 45 minutes of work plus a 15-minute break)", 240,
         "Chapters 1 and 3 to 6 run on the learners' laptops with the `cpu` budget; the instructor shows chapter 2 "
         "(chapter 3 repeats its code). Chapter 5's short training runs start before the break; chapter 6 loads "
         "its stored runs (and the trained network) in a few minutes. Chapter 1's exercises and the chapters on "
         "training fast are left for the follow-up reading.",
         (Slot("fixed", "Welcome; everyone runs the setup cell of chapter 1 (check the printed device and "
                        "budget)", minutes=5),
          Slot("paper", "How to read a paper for implementation: the one-page guide, then the checklist "
                        "filled in with the paper open", minutes=10),
          Slot("chapter", "The architecture table as data", (TABLE,), exercises=0),
          Slot("demo", "The naive model written out by hand, and its three problems (instructor)", (NAIVE,),
               minutes=5),
          Slot("chapter", "The config-driven builder, proved equal (in pairs)", (REFACTORED,)),
          Slot("chapter", "Shape and torchinfo checks", (SHAPES,), exercises=15),
          Slot("break", "Break. Before it, learners open chapter 5 and run it (Run All): its training "
                        "finishes during the break", minutes=15),
          Slot("chapter", "Stuck at 10%: the plateau and its measurements", (FAILURE,), exercises=None,
               after_break=True),
          Slot("chapter", "The batch-norm fix: start Run All first (it loads the stored runs), then read",
               (BATCH_NORM,)),
          Slot("fixed", "Wrap-up: what to check when implementing the next paper", minutes=5))),
    Plan("many-gpus", "Follow-up session (90 minutes): training on many processes", 90,
         "Chapter 10 stands on its own after chapter 6. Its `cpu`-budget run launches its training runs one "
         "after another: start it at the beginning and read while it runs.",
         (Slot("fixed", "Welcome; everyone opens chapter 10, runs the setup cell and starts Run All", minutes=5),
          Slot("chapter", "Data parallelism, synced batch norm, torchrun, and the measured speed-up", (MANY_GPUS,),
               exercises=None),
          Slot("demo", "Discussion: the paper's 3.75x on four GPUs (sec. 3.3) against what the chapter "
                       "measured", (MANY_GPUS,), minutes=10))),
)


@dataclass
class Row:
    """A slot with its computed minutes.

    Attributes:
        slot: the slot.
        start: minutes from the start of the session.
        minutes: the slot's length.
        how: how the minutes were computed, in words.
        chosen: the exercises chosen for it, as ``(chapter stem, exercise)`` pairs.
    """

    slot: Slot
    start: int
    minutes: int
    how: str
    chosen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _entry(data: dict[str, Any], stem: str) -> dict[str, Any]:
    return data.get("notebooks", {}).get(stem, {})


def run_minutes(entry: dict[str, Any]) -> int:
    """A chapter's measured run time in whole minutes (rounded up); 0 when it was not measured.

    Args:
        entry: the chapter's entry in the timings data.
    Returns:
        Minutes.
    """
    return math.ceil(entry["seconds"] / 60) if entry.get("status") == "ok" else 0


def choose_exercises(data: dict[str, Any], chapters: tuple[str, ...] | list[str], budget: int,
                     exclude: set[tuple[str, int]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Fill an exercise budget: easiest first, then shortest, then in chapter order, each while it fits.

    Args:
        data: the timings data.
        chapters: the chapters whose exercises may be chosen.
        budget: minutes.
        exclude: ``(chapter stem, exercise number)`` pairs already chosen elsewhere in the plan.
    Returns:
        ``(chapter stem, exercise)`` pairs in chapter and exercise order.
    """
    exclude = exclude or set()
    pool = [(i, stem, ex) for i, stem in enumerate(chapters) for ex in _entry(data, stem).get("exercises", [])
            if (stem, ex["number"]) not in exclude]
    pool.sort(key=lambda t: (LEVELS.index(t[2]["level"]), t[2]["minutes"], t[0], t[2]["number"]))
    chosen, used = [], 0
    for i, stem, ex in pool:
        if used + ex["minutes"] <= budget:
            chosen.append((i, stem, ex))
            used += ex["minutes"]
    return [(stem, ex) for i, stem, ex in sorted(chosen, key=lambda t: (t[0], t[2]["number"]))]


def picked_exercises(data: dict[str, Any], picks: tuple[tuple[str, int], ...]) -> list[tuple[str, dict[str, Any]]]:
    """The exercises a slot names, with their labels from the timings data.

    Args:
        data: the timings data.
        picks: ``(chapter stem, exercise number)`` pairs.
    Returns:
        ``(chapter stem, exercise)`` pairs, in the order given; none when the data has no exercises yet.
    Raises:
        ValueError: when a chapter's data has exercises but not the one named.
    """
    chosen = []
    for stem, number in picks:
        exercises = _entry(data, stem).get("exercises", [])
        found = [ex for ex in exercises if ex["number"] == number]
        if exercises and not found:
            raise ValueError(f"{stem} has no exercise {number} (it has {[ex['number'] for ex in exercises]}): "
                             "fix the slot's picks in tools/workshop.py")
        chosen += [(stem, ex) for ex in found]
    return chosen


def hands_on_minutes(plan: Plan, data: dict[str, Any] | None) -> int:
    """The minutes in which learners run or write code: their exercises, and the measured runs of the chapters
    they run themselves (a run started before a break counts what is left of it after the break).

    Args:
        plan: the plan.
        data: the timings data.
    Returns:
        Minutes.
    """
    data = data or {}
    total = 0
    for i, row in enumerate(plan_rows(plan, data)):
        total += sum(ex["minutes"] for _, ex in row.chosen)
        if row.slot.kind == "chapter":
            overlap = _break_before(plan, i) if row.slot.after_break else 0
            total += sum(max(0, run_minutes(_entry(data, stem)) - overlap) for stem in row.slot.chapters)
    return total


def _break_before(plan: Plan, index: int) -> int:
    previous = [s for s in plan.slots[:index] if s.kind == "break"]
    return previous[-1].minutes if previous else 0


def _fixed_part(plan: Plan, index: int, data: dict[str, Any]) -> tuple[int, str]:
    """A slot's minutes without its exercises, and how they were computed."""
    slot = plan.slots[index]
    if slot.kind in ("fixed", "demo", "break"):
        return slot.minutes, "set by the plan"
    if slot.kind == "paper":
        page = data.get("pages", {}).get(PAPER_PAGE, {}).get("reading_minutes", 0)
        extra = f" + {slot.minutes} with the paper open" if slot.minutes else ""
        return page + slot.minutes, f"reading {page}{extra}"
    if slot.kind == "exercises":
        return 0, ""
    total, how = 0, []
    overlap = _break_before(plan, index) if slot.after_break else 0
    for stem in slot.chapters:
        entry = _entry(data, stem)
        reading, run = entry.get("reading_minutes", 0), run_minutes(entry)
        left = max(0, run - overlap)
        total += max(reading, left)
        ran = f"running {run}" + (f" − {overlap} of break = {left}" if overlap else "")
        how.append(f"max(reading {reading}, {ran})" if entry.get("status") == "ok"
                   else f"reading {reading} (run not measured)")
    return total, " + ".join(how)


def plan_rows(plan: Plan, data: dict[str, Any] | None) -> list[Row]:
    """Compute every slot's minutes and start time.

    Args:
        plan: the plan.
        data: the timings data (``tools/time_notebooks.py``); None gives zero minutes wherever data is needed.
    Returns:
        One row per slot.
    Raises:
        ValueError: when more than one slot takes "what is left".
    """
    data = data or {}
    rest = [i for i, s in enumerate(plan.slots) if s.exercises is None]
    if len(rest) > 1:
        raise ValueError(f"plan {plan.key!r}: only one slot may take what is left (slots {rest})")
    parts = [_fixed_part(plan, i, data) for i in range(len(plan.slots))]
    chosen: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    taken: set[tuple[str, int]] = set()          # an exercise is chosen once per plan
    for i, slot in enumerate(plan.slots):
        if slot.picks:
            chosen[i] = picked_exercises(data, slot.picks)
            taken |= set(slot.picks)
    for i, slot in enumerate(plan.slots):
        if slot.exercises and not slot.picks:
            chosen[i] = choose_exercises(data, slot.chapters, slot.exercises, taken)
            taken |= {(stem, ex["number"]) for stem, ex in chosen[i]}
    if rest:
        used = sum(p[0] for p in parts) + sum(ex["minutes"] for c in chosen.values() for _, ex in c)
        chosen[rest[0]] = choose_exercises(data, plan.slots[rest[0]].chapters, max(0, plan.length - used), taken)
    rows, start = [], 0
    for i, slot in enumerate(plan.slots):
        minutes, how = parts[i]
        picks = chosen.get(i, [])
        if picks:
            ex_minutes = sum(ex["minutes"] for _, ex in picks)
            minutes += ex_minutes
            label = "exercises " + " + ".join(str(ex["minutes"]) for _, ex in picks)
            how = f"{how} + {label}" if how else label
        elif slot.exercises is None or slot.exercises or slot.picks:
            how = (how + " + " if how else "") + "no exercise fits"
        rows.append(Row(slot, start, minutes, how, picks))
        start += minutes
    return rows


def total_minutes(plan: Plan, data: dict[str, Any] | None) -> int:
    """The plan's total minutes, breaks included.

    Args:
        plan: the plan.
        data: the timings data.
    Returns:
        Minutes.
    """
    return sum(row.minutes for row in plan_rows(plan, data))


def _hmm(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _number(stem: str) -> str:
    return str(int(stem.split("-", 1)[0]))


def book_link(stem: str) -> str:
    """A chapter as a link in the instructor guide (MyST, from ``book/``)."""
    return f"{{doc}}`chapter {_number(stem)} <../notebooks/{stem}>`"


def plain_name(stem: str) -> str:
    """A chapter as plain text (slides)."""
    return f"chapter {_number(stem)}"


def describe(row: Row, name: Callable[[str], str] = book_link, paper: str = "{doc}`reading-the-paper`") -> str:
    """The "what" column of a row: the slot's text, its chapters and its chosen exercises.

    Args:
        row: the row.
        name: how to write a chapter (link or plain text).
        paper: how to write the paper-reading page.
    Returns:
        Markdown.
    """
    slot = row.slot
    text = slot.what
    if slot.kind in ("chapter", "demo") and slot.chapters:
        how = "read and run" if slot.kind == "chapter" else "demo from the committed outputs"
        text = f"{', '.join(name(c) for c in slot.chapters)} ({how}): {text}"
    if slot.kind == "paper":
        text = f"{text} ({paper})"
    if row.chosen:
        text += (": " if slot.kind == "exercises" else "; exercises: ") + ", ".join(
            f"{_number(stem)}.{ex['number']} ({ex['level']} · {ex['minutes']} min)" for stem, ex in row.chosen)
    return text


def render_plan(plan: Plan, data: dict[str, Any] | None, name: Callable[[str], str] = book_link,
                paper: str = "{doc}`reading-the-paper`", heading: str = "###") -> str:
    """One plan as a markdown table.

    Args:
        plan: the plan.
        data: the timings data.
        name: how to write a chapter.
        paper: how to write the paper-reading page.
        heading: the markdown heading level of the title ("" for none).
    Returns:
        Markdown.
    """
    rows = plan_rows(plan, data)
    total = sum(r.minutes for r in rows)
    lines = [f"{heading} {plan.title}", ""] if heading else []
    lines += [plan.intro, "", "| time | min | what | minutes from |", "|---|---:|---|---|"]
    for r in rows:
        lines.append(f"| {_hmm(r.start)}-{_hmm(r.start + r.minutes)} | {r.minutes} | "
                     f"{describe(r, name, paper)} | {r.how} |")
    fits = "fits" if total <= plan.length else "**does not fit**"
    lines.append(f"| **total** | **{total}** | of the session's {plan.length} minutes ({fits}) | |")
    hands_on = hands_on_minutes(plan, data)
    lines += ["", f"Learners run or write code for {hands_on} of the {plan.length} minutes (their exercises, and "
                  "the measured runs of the chapters they run themselves)."]
    return "\n".join(lines)


def render_plans(data: dict[str, Any] | None) -> str:
    """Every plan, for the instructor guide (the block between ``START`` and ``END``).

    Args:
        data: the timings data.
    Returns:
        Markdown.
    """
    if not data:
        return "*No measurement yet: run `python tools/time_notebooks.py --from-outputs` to compute the plans.*"
    blocks = [render_plan(plan, data) for plan in PLANS]
    return "\n\n".join(blocks)


ANSWER_KEY = ROOT / "book" / "answer-key.md"


def _self_check_questions(nb: Any) -> int:
    """How many numbered questions (``**1.**``) a chapter's "Self-check" section asks."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("## Self-check"):
            return len(re.findall(r"(?m)^\*\*\d+\.\*\*", cell.source))
    return 0


def answer_key(root: Path = ROOT) -> str:
    """The answer-key page: per chapter, its exercises (level, minutes, where the solution is) and its self-check.

    Args:
        root: the repository root.
    Returns:
        The page's markdown (``book/answer-key.md``).
    """
    import nbformat

    lines = ["# Answer key", "",
             "% generated by `python tools/workshop.py --answer-key` from the chapters (a test keeps it in sync)", "",
             "Every exercise's solution sits in the full chapter, right below the exercise, folded: *Show code cell "
             "content* in the book, a form cell titled *Solution* in Colab and Jupyter. A build-it exercise (a "
             "function) is followed by its check cell, which runs the book's own version in the full chapter. The "
             "self-check questions have their answers folded under each question (*Answer*). The student copies "
             "leave the solutions out and keep the answers folded; keep this page and the full chapters open on the "
             "teacher's screen.", ""]
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title = nb.cells[0].source.split("\n")[0].lstrip("# ").strip()
        doc = f"../notebooks/{path.stem}.ipynb"
        lines += [f"## [{title}]({doc})", ""]
        found, _ = exercises(nb)
        if found:
            lines += [f"[Exercises]({doc}#exercises), each solution folded below it:", ""]
            lines += [f"- Exercise {ex['number']}: {ex['title']} ({ex['level']} · {ex['minutes']} min)" for ex in found]
            lines.append("")
        questions = _self_check_questions(nb)
        if questions:
            lines += [f"[Self-check]({doc}#self-check): {questions} questions, each answer folded below it.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print every plan with its minutes, or (``--answer-key``) write the answer-key page.

    Args:
        argv: ``["--answer-key"]`` or nothing.
    Returns:
        1 when a plan does not fit its session, else 0.
    """
    if argv is None:
        argv = sys.argv[1:]
    if argv == ["--answer-key"]:
        tmp = ANSWER_KEY.with_suffix(".tmp")
        tmp.write_text(answer_key())
        tmp.replace(ANSWER_KEY)
        print(f"wrote {ANSWER_KEY.relative_to(ROOT)}")
        return 0
    if argv:
        raise SystemExit(f"usage: python tools/workshop.py [--answer-key]; got {' '.join(argv)}")
    data = load_timings()
    status = 0
    for plan in PLANS:
        print(render_plan(plan, data, name=plain_name, paper="book/reading-the-paper.md", heading="##"))
        print()
        if total_minutes(plan, data) > plan.length:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
