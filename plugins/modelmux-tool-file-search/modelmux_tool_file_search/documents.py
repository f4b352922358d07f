"""From an uploaded file to the chunks that get embedded: text extraction and chunking.

Tokens are estimated at four characters each (the gateway has no tokenizer for every embedding
model; four is OpenAI's own rule of thumb for English), so the ``auto`` strategy's 800 tokens
with 400 overlap are windows of 3,200 characters starting every 1,600.
"""

from __future__ import annotations

import codecs
import io
import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

CHARS_PER_TOKEN = 4
#: OpenAI's ``auto`` chunking strategy (docs: "max_chunk_size_tokens of 800 and chunk_overlap_tokens of 400").
AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400

#: Extensions read as UTF-8 text. Everything else is refused at upload with this list.
TEXT_EXTENSIONS = frozenset(
    {
        # prose and data
        "txt", "text", "md", "markdown", "rst", "adoc", "org", "tex", "log",
        "json", "jsonl", "ndjson", "csv", "tsv", "xml", "yaml", "yml", "toml", "ini", "cfg", "conf", "env",
        "html", "htm", "xhtml",
        # code
        "py", "pyi", "js", "mjs", "cjs", "ts", "tsx", "jsx", "java", "kt", "kts", "scala", "groovy",
        "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "cs", "go", "rs", "rb", "php", "pl", "pm", "lua",
        "swift", "m", "mm", "r", "jl", "dart", "ex", "exs", "erl", "hs", "ml", "clj", "elm", "vue", "svelte",
        "sh", "bash", "zsh", "fish", "ps1", "bat", "sql", "graphql", "proto", "css", "scss", "less",
        "dockerfile", "makefile", "gradle", "tf", "hcl",
    }
)  # fmt: skip
HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
#: Read with pypdf: the text layer of each page (a scanned PDF without one has no text to index).
PDF_EXTENSIONS = frozenset({"pdf"})
#: Files without an extension that are plainly text.
TEXT_NAMES = frozenset({"dockerfile", "makefile", "readme", "license", "changelog", "notice", "authors"})


class UnsupportedFile(ValueError):
    """The file is not one we can read (``last_error.code``: ``unsupported_file`` or ``invalid_file``)."""

    def __init__(self, message: str, code: str = "unsupported_file") -> None:
        super().__init__(message)
        self.code = code


def extension(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name.lower()
    if "." not in name.strip("."):
        return name if name in TEXT_NAMES else ""
    return name.rsplit(".", 1)[1]


def supported(filename: str) -> bool:
    ext = extension(filename)
    return ext in TEXT_EXTENSIONS or ext in TEXT_NAMES or ext in PDF_EXTENSIONS


def supported_types() -> str:
    return ", ".join(f".{e}" for e in sorted(TEXT_EXTENSIONS | PDF_EXTENSIONS))


def extract_text(filename: str, data: bytes) -> str:
    """The file's text: UTF-8 (a BOM, UTF-16 with a BOM too), HTML without its markup."""
    if not supported(filename):
        raise UnsupportedFile(f"File type of {filename!r} is not supported. Supported: {supported_types()}.")
    if extension(filename) in PDF_EXTENSIONS:
        text = pdf_text(filename, data)
    else:
        text = _decode(filename, data)
        if extension(filename) in HTML_EXTENSIONS:
            text = html_text(text)
    if not text.strip():
        raise UnsupportedFile(f"File {filename!r} has no text to index.", code="invalid_file")
    return text


def _decode(filename: str, data: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedFile(
            f"File {filename!r} is not UTF-8 text (byte {exc.start} is not valid UTF-8).", code="invalid_file"
        ) from exc
    if "\x00" in text:
        raise UnsupportedFile(f"File {filename!r} holds NUL bytes: it is binary, not text.", code="invalid_file")
    return text


def pdf_text(filename: str, data: bytes) -> str:
    """The text layer of every page, pages apart by a blank line."""
    import pypdf  # here: only files being indexed need it
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedFile(f"PDF {filename!r} is encrypted with a password.", code="invalid_file")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnsupportedFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:  # a damaged or odd file
        raise UnsupportedFile(f"PDF {filename!r} could not be read: {exc}.", code="invalid_file") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UnsupportedFile(
            f"PDF {filename!r} has no text layer (a scan? this gateway does no OCR).", code="invalid_file"
        )
    return text


class _TextOf(HTMLParser):
    """Visible text of an HTML page: scripts, styles and templates dropped, blocks on their own lines."""

    SKIP = frozenset({"script", "style", "template", "noscript", "head"})
    BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table", "hr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True, slots=True)
class Chunking:
    """A static chunking strategy in tokens (``auto`` is 800/400)."""

    max_tokens: int = AUTO_MAX_TOKENS
    overlap_tokens: int = AUTO_OVERLAP_TOKENS

    def as_response(self) -> dict[str, object]:
        # OpenAI reports an ``auto`` strategy as the static one it resolved to.
        return {
            "type": "static",
            "static": {"max_chunk_size_tokens": self.max_tokens, "chunk_overlap_tokens": self.overlap_tokens},
        }

    def to_json(self) -> str:
        return json.dumps([self.max_tokens, self.overlap_tokens])


def chunk_text(text: str, chunking: Chunking) -> list[str]:
    """Windows of ``max_tokens`` (estimated) overlapping by ``overlap_tokens``, each ending at a
    line break or space near its end when there is one, so words are rarely cut."""
    size = chunking.max_tokens * CHARS_PER_TOKEN
    overlap = chunking.overlap_tokens * CHARS_PER_TOKEN
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            # Break at the last newline, else space, in the window's final fifth.
            floor = start + size * 4 // 5
            cut = max(text.rfind("\n", floor, end), text.rfind(" ", floor, end))
            if cut > start:
                end = cut + 1
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= len(text):
            break
        nxt = end - overlap
        if nxt <= start:  # the window shrank to the overlap: move on without it
            nxt = end
        # Start the next window at a word boundary too.
        space = text.find(" ", nxt, min(nxt + 40, end))
        start = space + 1 if space != -1 and space + 1 < end else nxt
    return chunks
