"""Bulk import of Citizen Lab test lists and plain URL lists."""

import time

import pytest
from sqlalchemy import func, select

from mirror.importer import ImportFileError, country_from_filename, import_sources
from mirror.models import Source

HEADER = "url,category_code,category_description,date_added,source,notes\n"
CSV = (
    HEADER
    + "https://www.rfa.org/vietnamese/,NEWS,News Media,2014-04-15,citizenlab,\n"
    + 'http://danlambaovn.blogspot.com/,POLR,"Political Criticism, opposition",2014-04-15,citizenlab,""\n'
    + "https://www.hrw.org/asia/vietnam,HUMR,Human Rights Issues,2017-01-01,,\"quoted, with comma\"\n"
)


def run_import(runtime, data: bytes, filename="vn.csv", **kw):
    with runtime.Session() as session:
        summary = import_sources(session, data, filename, 360, **kw)
        session.commit()
        return summary


def sources(runtime) -> list[Source]:
    with runtime.Session() as session:
        return list(session.scalars(select(Source).order_by(Source.id)))


def test_citizenlab_csv_keeps_categories_and_country_from_the_file_name(runtime):
    summary = run_import(runtime, CSV.encode(), collection="vietnam")
    assert (len(summary.added), summary.already_present, summary.invalid) == (3, 0, [])
    rows = sources(runtime)
    assert [s.url for s in rows] == [
        "https://www.rfa.org/vietnamese/",
        "http://danlambaovn.blogspot.com/",
        "https://www.hrw.org/asia/vietnam",
    ]
    assert {s.country for s in rows} == {"VN"} and {s.collection for s in rows} == {"vietnam"}
    assert rows[1].category_code == "POLR"
    assert rows[1].category_description == "Political Criticism, opposition"


def test_second_import_of_the_same_file_adds_nothing(runtime):
    run_import(runtime, CSV.encode())
    again = run_import(runtime, CSV.encode())
    assert (again.added, again.already_present) == ([], 3)
    assert len(sources(runtime)) == 3


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_still_land(runtime):
    data = (
        HEADER
        + "https://ok.example/,NEWS,News,2020-01-01,x,\n"
        + "ftp://files.example/,NEWS,News,2020-01-01,x,\n"
        + "not a url,NEWS,News,2020-01-01,x,\n"
        + "https://short.example/,NEWS\n"
        + "https://ok.example/,NEWS,News,2020-01-01,x,\n"  # a duplicate within the file
        + "\n"
    ).encode()
    summary = run_import(runtime, data)
    assert len(summary.added) == 1 and summary.already_present == 1
    lines = dict(summary.invalid)
    assert set(lines) == {3, 4, 5}
    assert "unsupported scheme" in lines[3] and "expected 6 fields" in lines[5]


def test_bom_and_windows_line_ends_are_fine(runtime):
    data = "\ufeff".encode() + CSV.replace("\n", "\r\n").encode()
    assert len(run_import(runtime, data).added) == 3


def test_plain_list_one_url_per_line(runtime):
    data = b"# blocked in VN\nhttps://a.example/\n\nHTTPS://A.example:443/#x\nhttps://b.example/page\n"
    summary = run_import(runtime, data, filename="list.txt", country="vn")
    assert len(summary.added) == 2 and summary.already_present == 1
    assert {s.country for s in sources(runtime)} == {"VN"}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        ("url;category\nhttps://x.example/;NEWS\n".encode("utf-16"), "binary"),
        (b"\xff\xfe\xfa not utf-8 \xff", "not UTF-8"),
        (b"url,foo,bar\nhttps://x.example/,1,2\n", "not a Citizen Lab test-list header"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_whole(runtime, data, message):
    with pytest.raises(ImportFileError, match=message):
        run_import(runtime, data)
    assert sources(runtime) == []


def test_ten_thousand_rows_import_quickly_in_one_transaction(runtime):
    rows = "".join(f"https://site{i}.example/page,NEWS,News,2020-01-01,x,\n" for i in range(10_000))
    started = time.monotonic()
    summary = run_import(runtime, (HEADER + rows).encode())
    elapsed = time.monotonic() - started
    assert len(summary.added) == 10_000 and summary.invalid == []
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 10_000
    assert elapsed < 60, f"10,000 rows took {elapsed:.1f} s"


@pytest.mark.parametrize(
    "name, country", [("vn.csv", "VN"), ("/lists/MM.txt", "MM"), ("global.csv", None), (None, None)]
)
def test_country_from_file_name(name, country):
    assert country_from_filename(name) == country


def test_cli_import_shows_a_summary(cli, tmp_path):
    path = tmp_path / "vn.csv"
    path.write_text(CSV + "gopher://old.example/,NEWS,News,2020-01-01,x,\n")
    result = cli.invoke(args=["sources", "import", str(path), "--collection", "vietnam"])
    assert result.exit_code == 0, result.output
    assert "3 added, 0 already present, 1 invalid" in result.output
    assert "line 5: unsupported scheme" in result.output
    again = cli.invoke(args=["sources", "import", str(path)])
    assert "0 added, 3 already present, 1 invalid" in again.output


def test_cli_import_missing_file_is_one_clear_error(cli, tmp_path):
    result = cli.invoke(args=["sources", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code != 0 and "cannot read" in result.output
