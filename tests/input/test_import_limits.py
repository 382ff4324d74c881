"""Imports: values too wide for their columns, too many rows, and garbage echoed back."""

from __future__ import annotations

import io
import json

import pytest

from mirror.importer import MAX_IMPORT_ROWS, MAX_REASON_LENGTH, MAX_REPORTED_INVALID
from mirror.models import Source
from tests.input.conftest import count

HEADER = "url,category_code,category_description,date_added,source,notes\n"


def api_import(client, admin, data: bytes, filename: str = "vn.csv", **fields):
    return client.post(
        "/api/sources/import",
        data={"file": (io.BytesIO(data), filename), **fields},
        headers=admin,
        content_type="multipart/form-data",
    )


def page_import(client, admin, data: bytes, filename: str = "vn.csv", **fields):
    form = {"file": (io.BytesIO(data), filename), "csrf_token": admin["X-CSRF-Token"], **fields}
    return client.post("/manage/sources/import", data=form, content_type="multipart/form-data")


@pytest.mark.parametrize("do_import", [api_import, page_import], ids=["api", "page"])
def test_a_collection_too_long_for_its_column_refuses_the_import(app, client, admin, do_import):
    data = (HEADER + "https://ok.example/,NEWS,News,2020-01-01,x,\n").encode()
    response = do_import(client, admin, data, collection="c" * 300)
    assert response.status_code == 400
    assert "at most 100 characters" in response.get_data(as_text=True)
    assert count(app, Source) == 0


def test_rows_whose_categories_do_not_fit_are_reported_and_the_rest_land(app, client, admin):
    data = (
        HEADER
        # Long notes push the NUL below past the first 8 KiB, which the binary check reads.
        + f"https://ok.example/,NEWS,News,2020-01-01,x,{'n' * 9000}\n"
        + f"https://code.example/,{'C' * 40},News,2020-01-01,x,\n"
        + f"https://desc.example/,NEWS,{'d' * 300},2020-01-01,x,\n"
        + "https://nul.example/,NEWS,Ne\x00ws,2020-01-01,x,\n"
    ).encode()
    body = api_import(client, admin, data).get_json()
    assert body["added"] == 1 and body["invalid_count"] == 3
    reasons = {row["line"]: row["reason"] for row in body["invalid"]}
    assert "category_code must be at most 32" in reasons[3]
    assert "category_description must be at most 255" in reasons[4]
    assert "NUL" in reasons[5]
    assert count(app, Source) == 1


@pytest.mark.parametrize("do_import", [api_import, page_import], ids=["api", "page"])
def test_a_file_with_more_rows_than_one_request_may_import_is_refused_whole(
    app, client, admin, do_import
):
    data = "".join(f"https://site{i}.example/\n" for i in range(MAX_IMPORT_ROWS + 1)).encode()
    response = do_import(client, admin, data, filename="list.txt")
    assert response.status_code == 400
    assert f"more than {MAX_IMPORT_ROWS} rows" in response.get_data(as_text=True)
    assert count(app, Source) == 0


def test_garbage_comes_back_as_a_count_and_the_first_few_lines_only(app, client, admin):
    # 5,000 lines of 1,500 characters: the old report echoed every line back, several times larger.
    garbage = "".join(f"not a url {i} {'x' * 1500}\n" for i in range(5_000)).encode()
    response = api_import(client, admin, garbage, filename="list.txt")
    body = response.get_json()
    assert body["invalid_count"] == 5_000 and len(body["invalid"]) == MAX_REPORTED_INVALID
    assert all(len(row["reason"]) <= MAX_REASON_LENGTH for row in body["invalid"])
    assert len(response.get_data()) < 40_000
    page = page_import(client, admin, garbage, filename="list.txt")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "5000 invalid" in html
    assert html.count("<tr>") == MAX_REPORTED_INVALID + 1 and len(html) < 60_000


def test_the_cli_takes_what_the_page_takes_and_lists_only_the_first_invalid_lines(app, cli, tmp_path):
    # One limit for every way in: a file of MAX_IMPORT_ROWS rows imports, one more is refused.
    invalid = [f"gopher://old{i}.example/" for i in range(MAX_REPORTED_INVALID + 5)]
    lines = [f"https://site{i}.example/" for i in range(MAX_IMPORT_ROWS - len(invalid))] + invalid
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines) + "\n")
    result = cli.invoke(args=["sources", "import", str(path)])
    assert result.exit_code == 0, result.output
    added = MAX_IMPORT_ROWS - len(invalid)
    assert f"{added} added, 0 already present, {MAX_REPORTED_INVALID + 5} invalid" in result.output
    assert "… and 5 more invalid lines" in result.output
    assert count(app, Source) == added
    path.write_text("\n".join([*lines, "https://one-more.example/"]) + "\n")
    refused = cli.invoke(args=["sources", "import", str(path)])
    assert refused.exit_code == 1 and f"more than {MAX_IMPORT_ROWS} rows" in refused.output
    assert count(app, Source) == added
