"""The CSV export opened in a real spreadsheet program (issue 22): LibreOffice Calc, headless,
converts the exports to .xlsx with the settings of its Text Import dialog, and openpyxl reads the
cells back.

The settings are those the dialog shows a journalist who double-clicks the file: the separators
it offers by default (comma, semicolon and tab), double quotes, UTF-8 (which the dialog picks
from the file's byte order mark; Excel needs that mark to read UTF-8 at all) and English (USA)
numbers. Headless LibreOffice evaluates formulas in a CSV, as Excel always does, so the formula
guard is put to a real test. LibreOffice comes from apt (`make consumer-tools`); without it
these tests fail."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from app.events.csvline import CSV_COLUMNS
from tests.conftest import Writable
from tests.test_writes import new_event

# LibreOffice's CSV filter options, token by token: separators (comma/semicolon/tab, its
# dialog's defaults), text delimiter ("), character set (76: UTF-8), first row, column types
# (none: the dialog's "Standard"), language (1033: English (USA), '.' as decimal separator),
# quoted fields as text, detect special numbers (both off by default).
DOUBLE_CLICK = "44/59/9,34,76,1,,1033,false,false"
# The docs' advice for codes such as CAMEO "010": "Format quoted field as text".
QUOTED_AS_TEXT = "44/59/9,34,76,1,,1033,true,false"
GUARDED = new_event(
    "2025-04-21-formula-guard",
    title="=2+2 is text, not a formula",
    summary="-3 at the start of a summary is text too.",
)


def soffice() -> str:
    path = shutil.which("soffice")
    if path is None:
        pytest.fail("LibreOffice (soffice) is missing: run `make consumer-tools`")
    return path


def convert(folder: Path, csvs: list[Path], options: str) -> list[Path]:
    """The CSV files as .xlsx, converted by one LibreOffice run with these import options."""
    out = folder / "xlsx"
    done = subprocess.run(
        [
            soffice(),
            "--headless",
            "--norestore",
            f"-env:UserInstallation={(folder / 'profile').as_uri()}",
            f"--infilter=CSV:{options}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out),
            *map(str, csvs),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    converted = [out / f"{path.stem}.xlsx" for path in csvs]
    assert done.returncode == 0 and all(p.exists() for p in converted), done.stdout + done.stderr
    return converted


def cells(path: Path) -> list[list[openpyxl.cell.cell.Cell]]:
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows()]


def json_items(w: Writable, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    page = w.client.get("/v1/timeline", params={**params, "limit": 500}).json()
    assert page["next_cursor"] is None
    return {item["id"]: item for item in page["items"]}


@pytest.fixture(scope="module")
def exports(module_writable: Writable, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every event (with one whose title and summary start like formulas) and the issue's
    April 2025 query, as CSV files, with the JSON of the same events."""
    w = module_writable
    created = w.client.post("/v1/events", json=GUARDED, headers=w.auth())
    assert created.status_code == 201, created.text
    folder = tmp_path_factory.mktemp("spreadsheet")
    queries = {"everything": {}, "april": {"from": "2025-04", "to": "2025-04"}}
    files = {}
    for name, params in queries.items():
        response = w.client.get("/v1/timeline", params={**params, "format": "csv"})
        assert response.status_code == 200
        files[name] = folder / f"{name}.csv"
        files[name].write_bytes(response.content)
    return {
        "folder": folder,
        "files": files,
        "json": {name: json_items(w, params) for name, params in queries.items()},
    }


def test_a_double_clicked_export_reads_as_the_json(exports: dict[str, Any]) -> None:
    """Issue 22: `goldstein` and `lon` were text (`'-10.0`, `'-8.0029`), and a title holding a
    semicolon shifted its row by a column in LibreOffice. Every row has the JSON's text, with
    its accents, and its numbers as numbers; a cell that starts like a formula stays text."""
    names = list(exports["files"])
    books = convert(exports["folder"], [exports["files"][n] for n in names], DOUBLE_CLICK)
    for name, book in zip(names, books, strict=True):
        items = exports["json"][name]
        header, *rows = cells(book)
        assert [c.value for c in header] == CSV_COLUMNS  # the byte order mark is not in A1
        assert [row[0].value for row in rows] == list(items)
        for row in rows:
            assert len(row) == len(CSV_COLUMNS)
            by = dict(zip(CSV_COLUMNS, row, strict=True))
            item = items[by["id"].value]
            location = item["location"] or {}
            numbers = {
                "goldstein": item["goldstein"],
                "lat": location.get("lat"),
                "lon": location.get("lon"),
            }
            for column, value in numbers.items():
                read = by[column]
                if value is None:
                    assert read.value is None, (item["id"], column)
                else:
                    assert read.data_type == "n" and read.value == pytest.approx(value), (
                        item["id"],
                        column,
                        read.value,
                    )
            if item["id"] == GUARDED["id"]:
                for column in ("title", "summary"):
                    assert by[column].data_type == "s"
                    assert by[column].value == "'" + item[column]
                continue
            for column in ("title", "summary", "confidence"):
                assert by[column].value == item[column], (item["id"], column)
                assert by[column].data_type == "s"
            assert by["location"].value == location.get("name")
            publishers = " | ".join(s["publisher"] for s in item["sources"])
            assert by["source_publishers"].value == publishers
    everything = {c.value for row in cells(books[0]) for c in row if isinstance(c.value, str)}
    assert any("Akıncı" in text for text in everything)
    assert any("Maghreb Émergent" in text for text in everything)
    assert any("; " in item["title"] for item in exports["json"]["everything"].values())


def test_codes_keep_their_zeros_with_quoted_fields_as_text(exports: dict[str, Any]) -> None:
    """As the docs advise for CAMEO codes ("010"): "Format quoted field as text" keeps every
    text cell as written, and numbers (never quoted) stay numbers."""
    (book,) = convert(exports["folder"], [exports["files"]["everything"]], QUOTED_AS_TEXT)
    items = exports["json"]["everything"]
    _, *rows = cells(book)
    codes = {}
    for row in rows:
        by = dict(zip(CSV_COLUMNS, row, strict=True))
        codes[by["id"].value] = by["cameo_code"].value
        assert by["goldstein"].value is None or by["goldstein"].data_type == "n"
    assert codes == {i: item["cameo_code"] for i, item in items.items()}
    assert "010" in codes.values()
