"""The pure parts: text extraction, chunking, attribute filters, file citations in the answer."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from modelmux_tool_file_search.documents import Chunking, UnsupportedFile, chunk_text, extract_text, supported
from modelmux_tool_file_search.filters import check_filters, matches
from modelmux_tool_file_search.tool import file_citations

from modelmux.plugin import InvalidRequestError


def test_text_like_files_are_read_and_others_refused() -> None:
    assert supported("notes.MD") and supported("main.py") and supported("Dockerfile") and supported("data.csv")
    assert supported("scan.PDF") and not supported("photo.png") and not supported("archive")
    assert extract_text("a.txt", "\ufeffhello".encode()) == "hello"
    assert extract_text("a.txt", "héllo".encode("utf-16")) == "héllo"
    with pytest.raises(UnsupportedFile) as err:
        extract_text("a.txt", b"ok \x80 bad")
    assert err.value.code == "invalid_file"
    with pytest.raises(UnsupportedFile, match="NUL"):
        extract_text("a.json", b'{"a": "\x00"}')
    with pytest.raises(UnsupportedFile, match="no text"):
        extract_text("a.md", b"  \n ")
    with pytest.raises(UnsupportedFile) as err:
        extract_text("a.docx", b"PK")
    assert err.value.code == "unsupported_file" and ".md" in str(err.value) and ".pdf" in str(err.value)


def test_a_pdf_is_read_from_its_text_layer(make_pdf: Callable[[list[str]], bytes]) -> None:
    assert extract_text("a.pdf", make_pdf(["Kestrel (station)\nspins", "Basil grows"])) == (
        "Kestrel (station)\nspins\n\nBasil grows"
    )
    with pytest.raises(UnsupportedFile) as err:
        extract_text("scan.pdf", make_pdf([""]))
    assert err.value.code == "invalid_file" and "no text layer" in str(err.value)
    with pytest.raises(UnsupportedFile) as err:
        extract_text("broken.pdf", b"%PDF-1.4\nthis is not a pdf")
    assert err.value.code == "invalid_file" and "could not be read" in str(err.value)


def test_html_is_read_without_its_markup_scripts_and_styles() -> None:
    page = (
        b"<html><head><title>T</title><style>p{color:red}</style></head><body>"
        b"<h1>Kestrel</h1><p>Spins &amp; grows <b>basil</b>.</p><script>alert(1)</script><p>End</p></body></html>"
    )
    assert extract_text("page.html", page) == "Kestrel\nSpins & grows basil.\nEnd"


def test_auto_chunks_are_800_token_windows_overlapping_by_400() -> None:
    words = [f"w{i:04d}" for i in range(2000)]  # 5 characters and a space each: 12,000 characters
    chunks = chunk_text(" ".join(words), Chunking())
    assert all(len(c) <= 3200 for c in chunks)
    assert all(len(c) > 3000 for c in chunks[:-1])  # cut at a space near the window's end
    assert len(chunks) == 7  # windows start about every 1,600 characters
    for before, after in itertools.pairwise(chunks):
        first = after.split()[0]
        assert first in before.split() and before.split().index(first) > len(before.split()) // 3
    assert " ".join(chunks).count("w1999") >= 1 and chunks[0].startswith("w0000")
    assert chunk_text("short", Chunking()) == ["short"] and chunk_text("  ", Chunking()) == []


def test_a_text_without_spaces_is_still_cut_into_windows() -> None:
    chunks = chunk_text("x" * 1000, Chunking(100, 0))
    assert [len(c) for c in chunks] == [400, 400, 200]


def test_filters_compare_attributes_as_openai_does() -> None:
    attrs = {"kind": "recipe", "year": 2024, "public": True, "score": 4.5}
    assert matches({"type": "eq", "key": "kind", "value": "recipe"}, attrs)
    assert not matches({"type": "eq", "key": "year", "value": "2024"}, attrs)  # types differ
    assert matches({"type": "eq", "key": "year", "value": 2024.0}, attrs)
    assert not matches({"type": "eq", "key": "public", "value": 1}, attrs)
    assert matches({"type": "gte", "key": "score", "value": 4}, attrs)
    assert not matches({"type": "lt", "key": "kind", "value": 3}, attrs)
    assert matches({"type": "in", "key": "kind", "value": ["memo", "recipe"]}, attrs)
    assert matches({"type": "nin", "key": "missing", "value": ["x"]}, attrs)
    assert matches({"type": "ne", "key": "missing", "value": "x"}, attrs)
    assert not matches({"type": "eq", "key": "missing", "value": "x"}, None)
    compound = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "kind", "value": "memo"},
            {
                "type": "and",
                "filters": [
                    {"type": "gt", "key": "year", "value": 2020},
                    {"type": "eq", "key": "public", "value": True},
                ],
            },
        ],
    }
    check_filters(compound, "filters")
    assert matches(compound, attrs) and not matches(compound, {**attrs, "public": False})


@pytest.mark.parametrize(
    ("node", "param"),
    [
        ({"type": "eq", "key": "a"}, "filters"),
        ({"type": "eq", "key": 1, "value": "x"}, "filters.key"),
        ({"type": "in", "key": "a", "value": "x"}, "filters.value"),
        ({"type": "eq", "key": "a", "value": {"x": 1}}, "filters.value"),
        ({"type": "and", "filters": "x"}, "filters.filters"),
        ({"type": "or", "filters": [{"type": "bad"}]}, "filters.filters[0].type"),
        ([], "filters"),
    ],
)
def test_a_bad_filter_is_a_400_naming_its_part(node: object, param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_filters(node, "filters")
    assert err.value.param == param


def test_file_citations_point_after_each_file_the_answer_names() -> None:
    sources = [
        {"file_id": "file-1", "filename": "data.md"},
        {"file_id": "file-2", "filename": "a.md"},
        {"file_id": "file-1", "filename": "data.md"},
    ]
    text = "Gravity comes from spin [data.md]. Basil grows there (a.md), see also metadata.md and data.mdx."
    cited = file_citations(text, sources)
    assert cited == [
        {"type": "file_citation", "file_id": "file-1", "filename": "data.md", "index": text.index("]") + 1},
        {"type": "file_citation", "file_id": "file-2", "filename": "a.md", "index": text.index("a.md)") + 4},
    ]
    assert file_citations("nothing cited", sources) == []
