"""The fidelity ledger (book/fidelity-ledger.md): every name on it is real and both of its tables are complete.

The page has two markdown tables. In the first (what the paper says), every row names code (backticked dotted names
such as ``vgg_helpers.paper.fc_to_conv``) and the tests that check it (pytest node ids such as
``tests/test_paper.py::test_crop_positions``). In the second (where the book deviates), every row has a "Measured"
cell. This file checks the page without running any test it names: code names are imported and looked up, node ids
are found with ``ast`` in their test files, and cited files must exist.
"""
from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "book" / "fidelity-ledger.md"
PAPER_TABLE = "## What the paper says"        # the start of the first table's heading
DEVIATION_TABLE = "## Where the book deviates"  # the start of the second table's heading
NO_TEST = "no test yet"                        # what a row of the first table says in place of a test id

# Statements of the paper that have code but no test yet: a phrase of the row's "Statement" cell -> why. A row of
# the first table may name no test only if it is listed here; a listed row that names a test must leave the list.
KNOWN_GAPS: dict[str, str] = {}   # statement phrase -> why its row names no test yet (none today)

SPAN = re.compile(r"`([^`]+)`")
DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
NODE_ID = re.compile(r"(tests/[\w/]+\.py)((?:::[A-Za-z_]\w*)+)(\[[^\]]*\])?")
FILE = re.compile(r"[\w./-]+\.(json|md|py|ipynb|yml|toml)")
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


@dataclass
class Table:
    """One markdown table of the page: the heading above it, its column names and its rows of cells."""

    heading: str
    columns: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> Optional[int]:
        """The index of the first column whose name starts with ``name`` (any case), or ``None``."""
        return next((i for i, c in enumerate(self.columns) if c.lower().startswith(name.lower())), None)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_tables(text: str) -> list[Table]:
    """Every markdown table of ``text``, each with the ``## `` heading it sits under.

    Args:
        text: the markdown page.
    Returns:
        The tables in page order; a table is a run of lines starting with ``|``, the second of them the separator.
    """
    tables: list[Table] = []
    heading, block = "", []
    for line in text.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            tables.append(Table(heading, _cells(block[0]), [_cells(b) for b in block[2:]]))
        block = []
        if line.startswith("## "):
            heading = line
    return tables


def spans(text: str) -> list[str]:
    """Every backticked span of ``text``."""
    return SPAN.findall(text)


def code_names(text: str) -> list[str]:
    """The backticked spans that name package code: those starting with ``vgg_helpers.``."""
    return [s for s in spans(text) if s.startswith("vgg_helpers.")]


def node_ids(text: str) -> list[str]:
    """The backticked spans that are pytest node ids: ``tests/...py::name``."""
    return [s for s in spans(text) if s.startswith("tests/") and "::" in s]


def file_paths(text: str) -> list[str]:
    """The backticked spans that are paths of files in the repository (no node ids, no globs)."""
    return [s for s in spans(text) if "::" not in s and "*" not in s and FILE.fullmatch(s)]


def resolve_code(name: str) -> Optional[str]:
    """Why a dotted name does not resolve (``None`` when it does): import the package, then walk the attributes.

    A part that is not an attribute of the object so far is tried as a submodule when that object is a package.
    """
    if not DOTTED.fullmatch(name):
        return f"`{name}` is not a dotted name (write call arguments outside the backticks)"
    parts = name.split(".")
    try:
        obj: object = importlib.import_module(parts[0])
    except ImportError as err:
        return f"`{name}`: cannot import {parts[0]}: {err}"
    path = parts[0]
    for part in parts[1:]:
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif isinstance(obj, ModuleType) and hasattr(obj, "__path__"):
            try:
                obj = importlib.import_module(f"{path}.{part}")
            except ModuleNotFoundError as err:
                if err.name != f"{path}.{part}":
                    return f"`{name}`: importing {path}.{part} failed: {err}"
                return f"`{name}`: {path} has no attribute or module {part!r}"
        else:
            return f"`{name}`: {path} has no attribute {part!r}"
        path = f"{path}.{part}"
    return None


def _defines(body: list[ast.stmt], name: str) -> Optional[ast.AST]:
    """The function or class called ``name`` defined directly in ``body``."""
    return next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == name), None)


def resolve_test(node_id: str, root: Path = ROOT) -> Optional[str]:
    """Why a pytest node id names no test (``None`` when it does), read with ``ast``: nothing is run.

    ``file::name`` is a test function or class at module level or a test method inside a module-level class;
    ``file::Class::name`` a method of that class. ``name[param]`` resolves by ``name``.
    """
    m = NODE_ID.fullmatch(node_id)
    if not m:
        return f"`{node_id}` is not a node id of the form tests/<file>.py::<name>"
    file = root / m.group(1)
    if not file.is_file():
        return f"`{node_id}`: no file {m.group(1)}"
    names = m.group(2).split("::")[1:]
    tree = ast.parse(file.read_text(), filename=str(file))
    body: list[ast.stmt] = tree.body
    for cls in names[:-1]:
        found = _defines(body, cls)
        if not isinstance(found, ast.ClassDef):
            return f"`{node_id}`: {m.group(1)} has no class {cls}"
        body = found.body
    last = names[-1]
    found = _defines(body, last)
    if found is None and len(names) == 1:        # a method named without its class
        found = next((d for c in tree.body if isinstance(c, ast.ClassDef) for d in [_defines(c.body, last)] if d),
                     None)
    if found is None:
        return f"`{node_id}`: {m.group(1)} defines no {last}"
    prefix = "Test" if isinstance(found, ast.ClassDef) else "test"
    if not last.startswith(prefix):
        return f"`{node_id}`: {last} is not a test (pytest collects names starting with {prefix!r})"
    return None


def _row_label(table: Table, row: list[str]) -> str:
    return f"{table.heading.lstrip('# ')[:30]}..., row '{' | '.join(row)[:70]}'"


def _complete_rows(table: Table, problems: list[str]):
    """The table's rows that have one cell per column; an empty table or a short row is added to ``problems``."""
    if not table.rows:
        problems.append(f"the table under '{table.heading}' has no rows")
    for row in table.rows:
        if len(row) != len(table.columns):
            problems.append(f"{_row_label(table, row)}: {len(row)} cells, not {len(table.columns)}")
            continue
        yield row


def check_paper_table(table: Table) -> tuple[list[str], list[list[str]]]:
    """Check the first table: a code column and a test column, and in every row at least one of each.

    Returns:
        ``(problems, gaps)``: what is wrong, and the rows whose test cell says ``NO_TEST`` (judged by the caller).
    """
    code, test = table.column("Code"), table.column("Test")
    if code is None or test is None:
        return [f"the table under '{table.heading}' needs a 'Code' and a 'Tests' column; it has {table.columns}"], []
    problems: list[str] = []
    gaps = []
    for row in _complete_rows(table, problems):
        if not code_names(row[code]):
            problems.append(f"{_row_label(table, row)}: names no code (`vgg_helpers....`)")
        if not node_ids(row[test]):
            if row[test].strip().lower() == NO_TEST:
                gaps.append(row)
            else:
                problems.append(f"{_row_label(table, row)}: names no test (`tests/...py::name`)")
    return problems, gaps


def check_deviation_table(table: Table, root: Path = ROOT) -> list[str]:
    """Check the second table: every row has a "Measured" cell, and its decimal numbers come from a cited file."""
    measured = table.column("Measured")
    if measured is None:
        return [f"the table under '{table.heading}' needs a 'Measured' column; it has {table.columns}"]
    problems: list[str] = []
    for row in _complete_rows(table, problems):
        cell = row[measured]
        if not cell.strip():
            problems.append(f"{_row_label(table, row)}: the 'Measured' cell is empty (write 'not measured')")
            continue
        texts = [(root / p).read_text() for p in file_paths(cell) if (root / p).is_file()]
        for number in DECIMAL.findall(SPAN.sub("", cell)):
            if not any(re.search(rf"(?<![\w.]){re.escape(number)}(?![\w.])", t) for t in texts):
                problems.append(f"{_row_label(table, row)}: {number} is in no file the cell cites")
    return problems


def check_ledger(text: str, root: Path = ROOT) -> tuple[list[str], list[list[str]]]:
    """Check the whole page.

    Args:
        text: the page.
        root: the repository the names and paths are relative to.
    Returns:
        ``(problems, gaps)``: every problem found, and the rows of the first table that name no test yet.
    """
    tables = parse_tables(text)
    problems: list[str] = []
    gaps: list[list[str]] = []
    for heading, check in ((PAPER_TABLE, "paper"), (DEVIATION_TABLE, "deviation")):
        found = [t for t in tables if t.heading.startswith(heading)]
        if len(found) != 1:
            problems.append(f"expected one table under a heading starting '{heading}'; found {len(found)}")
            continue
        if check == "paper":
            more, gaps = check_paper_table(found[0])
        else:
            more = check_deviation_table(found[0], root)
        problems += more
    for name in dict.fromkeys(code_names(text)):
        why = resolve_code(name)
        if why:
            problems.append(why)
    for node in dict.fromkeys(node_ids(text)):
        why = resolve_test(node, root)
        if why:
            problems.append(why)
    for path in dict.fromkeys(file_paths(text)):
        if not (root / path).is_file():
            problems.append(f"`{path}`: no such file")
    return problems, gaps


# ---- the page ----

@pytest.fixture(scope="module")
def ledger() -> str:
    return LEDGER.read_text()


def test_the_page_says_what_it_is(ledger):
    assert ledger.startswith("# Fidelity ledger\n")
    assert "`tests/test_ledger.py`" in ledger.split("\n## ")[0]


def test_every_name_resolves_and_both_tables_are_complete(ledger):
    problems, _ = check_ledger(ledger)
    assert not problems, "book/fidelity-ledger.md:\n" + "\n".join(problems)


def _table(ledger: str, heading: str) -> Table:
    return next(t for t in parse_tables(ledger) if t.heading.startswith(heading))


def test_both_tables_have_many_rows(ledger):
    assert len(_table(ledger, PAPER_TABLE).rows) >= 20
    assert len(_table(ledger, DEVIATION_TABLE).rows) >= 15


def test_rows_without_a_test_are_the_known_gaps(ledger):
    _, gaps = check_ledger(ledger)
    statement = _table(ledger, PAPER_TABLE).column("Statement")
    matched = {phrase: [row for row in gaps if phrase in row[statement]] for phrase in KNOWN_GAPS}
    unknown = [row[statement] for row in gaps if not any(p in row[statement] for p in KNOWN_GAPS)]
    assert not unknown, f"rows that name no test and are not known gaps (add a test): {unknown}"
    closed = [phrase for phrase, rows in matched.items() if len(rows) != 1]
    assert not closed, f"known gaps whose row now names a test (or is gone): remove them from KNOWN_GAPS: {closed}"


# ---- the checker itself ----

PAGE = """# Fidelity ledger

## What the paper says, the code, the test

| Paper | Statement | Code | Tests |
|---|---|---|---|
{paper_rows}

## Where the book deviates from the paper

| Paper | Book | Why | Measured |
|---|---|---|---|
{deviation_rows}
"""
GOOD_PAPER_ROW = ("| sec. 3.2 | multi-crop | `vgg_helpers.paper.crop_positions` | "
                  "`tests/test_paper.py::test_crop_positions` |")
GOOD_DEVIATION_ROW = "| batch 256 | batch 128 | laptop | not measured |"


def _page(paper_rows: str = GOOD_PAPER_ROW, deviation_rows: str = GOOD_DEVIATION_ROW) -> str:
    return PAGE.format(paper_rows=paper_rows, deviation_rows=deviation_rows)


def test_a_good_page_passes():
    assert check_ledger(_page()) == ([], [])


def test_the_checker_reports_a_made_up_row():
    made_up = "| sec. 9 | nothing | `vgg_helpers.paper.no_such_function` | `tests/test_paper.py::test_nope` |"
    problems, _ = check_ledger(_page(GOOD_PAPER_ROW + "\n" + made_up))
    text = "\n".join(problems)
    assert "vgg_helpers.paper.no_such_function" in text and "no attribute 'no_such_function'" in text
    assert "tests/test_paper.py::test_nope" in text and "defines no test_nope" in text
    assert len(problems) == 2


def test_the_checker_reports_rows_without_code_test_or_measurement():
    bare = "| sec. 9 | words only | none | none |"
    empty = "| batch 256 | batch 128 | laptop |  |"
    problems, gaps = check_ledger(_page(bare, empty))
    text = "\n".join(problems)
    assert "names no code" in text and "names no test" in text and "'Measured' cell is empty" in text
    assert gaps == []
    _, gaps = check_ledger(_page("| sec. 9 | later | `vgg_helpers.paper.combine` | no test yet |"))
    assert len(gaps) == 1


def test_the_checker_reports_missing_tables_and_columns():
    problems, _ = check_ledger("# Fidelity ledger\n\nno tables\n")
    assert len(problems) == 2 and all("expected one table" in p for p in problems)
    problems, _ = check_ledger(_page().replace("| Measured |", "| Effect |"))
    assert any("needs a 'Measured' column" in p for p in problems)
    problems, _ = check_ledger(_page().replace("| Paper | Statement | Code | Tests |", "| Paper | Statement |"))
    assert any("needs a 'Code' and a 'Tests' column" in p for p in problems)


def test_code_names_resolve_through_modules_classes_and_submodules():
    assert resolve_code("vgg_helpers.paper.ScaleJitter.__call__") is None
    assert resolve_code("vgg_helpers.configs.VGGConfig.init_std") is None
    assert resolve_code("vgg_helpers.book.paper.init_runs") is None
    assert "no attribute or module 'nowhere'" in resolve_code("vgg_helpers.nowhere.f")
    assert "not a dotted name" in resolve_code('vgg_helpers.training.TrainConfig(schedule="plateau")')


def test_node_ids_resolve_by_ast(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('n', [1, 2])\ndef test_a(n):\n    pass\n\n"
        "def helper():\n    pass\n\nclass TestB:\n    def test_c(self):\n        pass\n")
    for good in ("tests/test_x.py::test_a", "tests/test_x.py::test_a[1]", "tests/test_x.py::TestB",
                 "tests/test_x.py::TestB::test_c", "tests/test_x.py::test_c"):
        assert resolve_test(good, tmp_path) is None, good
    assert "defines no test_d" in resolve_test("tests/test_x.py::test_d", tmp_path)
    assert "has no class TestZ" in resolve_test("tests/test_x.py::TestZ::test_c", tmp_path)
    assert "is not a test" in resolve_test("tests/test_x.py::helper", tmp_path)
    assert "no file" in resolve_test("tests/test_y.py::test_a", tmp_path)
    assert "not a node id" in resolve_test("tests/test_x.py", tmp_path)


def test_a_measured_number_must_come_from_a_cited_file(tmp_path):
    (tmp_path / "run.json").write_text('{"test_acc": 0.8026, "lr": 0.1}')
    untested = "| s | t | `vgg_helpers.paper.combine` | no test yet |"    # no tests/ folder under tmp_path

    def problems(measured: str) -> list[str]:
        return check_ledger(_page(untested, f"| a | b | c | {measured} |"), tmp_path)[0]

    assert problems("0.8026 at lr 0.1 (`run.json`)") == []
    assert len(problems("0.9123 (`run.json`)")) == 1
    assert "0.9123 is in no file the cell cites" in problems("0.9123 (`run.json`)")[0]
    assert "0.8026 is in no file the cell cites" in problems("0.8026, from memory")[0]
    assert "0.80 is in no file" in problems("0.80 (`run.json`)")[0]          # a prefix of 0.8026 is not enough
    assert problems("not measured (`gone.json`)") == ["`gone.json`: no such file"]


# ---- statements the page makes about the plans ----
def _deviation_row(ledger: str, paper_starts: str) -> list[str]:
    table = next(t for t in parse_tables(ledger) if t.heading.startswith(DEVIATION_TABLE))
    rows = [r for r in table.rows if r[0].startswith(paper_starts)]
    assert len(rows) == 1, f"expected one row of the deviation table starting {paper_starts!r}; found {len(rows)}"
    return rows[0]


def batch_sizes_stated(cell: str) -> dict[str, int]:
    """``{plan table name: batch size}`` as a "Book" cell states them: each number (outside backticks) applies to
    the ``vgg_helpers.book.plans.X`` names that follow it, up to the next number."""
    stated: dict[str, int] = {}
    size = None
    for token in re.finditer(r"`vgg_helpers\.book\.plans\.(\w+)`|(?<![\w.`])(\d{1,3}(?:,\d{3})*)(?![\w.`])", cell):
        if token.group(2):
            size = int(token.group(2).replace(",", ""))
        elif size is not None:
            stated[token.group(1)] = size
    return stated


def test_the_batch_size_row_states_every_plans_batch_size(ledger):
    from vgg_helpers.book import plans

    cell = _deviation_row(ledger, "Batch size 256")[1]
    stated = batch_sizes_stated(cell)
    actual = {name: getattr(plans, name)["cpu"].run.batch_size for name in dir(plans)
              if name.isupper() and isinstance(getattr(plans, name), dict)
              and any(getattr(plans, name) is table for table in plans.TOPICS.values())}
    assert stated == actual, f"the ledger's batch sizes {stated} are not the plans' {actual}"


def test_batch_sizes_are_read_from_the_cell():
    cell = ("Batch size 32 in `vgg_helpers.book.plans.FAILURE`; 1,024 in `vgg_helpers.book.plans.MODERN` and "
            "`vgg_helpers.book.plans.MODERN_SHORT`")
    assert batch_sizes_stated(cell) == {"FAILURE": 32, "MODERN": 1024, "MODERN_SHORT": 1024}


def test_the_airbench_style_networks_departures_are_on_the_page(ledger):
    table = next(t for t in parse_tables(ledger) if t.heading.startswith(DEVIATION_TABLE))
    book = " ".join(row[1] for row in table.rows)
    for field in ("ModernConfig.whiten", "MODERN_CONFIGS", "ModernConfig.pool_first", "ModernConfig.activation",
                  "ModernConfig.logit_scale", "ModernRecipe.label_smoothing", "ModernRecipe.ema_from_epoch",
                  "ModernRecipe.tta_level", "ModernConfig.identity_init"):
        assert f"vgg_helpers.modern.{field}`" in book, f"no deviation row names vgg_helpers.modern.{field}"
