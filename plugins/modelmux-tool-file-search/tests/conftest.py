"""Fixtures for the file_search plugin's tests: a real gateway with the echo provider's
embeddings (deterministic: texts sharing words point the same way), the real Redis at
127.0.0.1:6379 under a unique key prefix (its keys deleted afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

REDIS_URL = os.environ.get("MODELMUX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = f"sk-fs-{uuid.uuid4().hex}"
OTHER = f"sk-fs-other-{uuid.uuid4().hex}"


def _gateway_config(tmp: Path, **file_search: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [KEY, OTHER]},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
        "tools": {"file_search": {"embedding_model": "echo", "path": str(tmp / "fs.sqlite3"), **file_search}},
    }


@pytest.fixture(scope="session")
def keys() -> tuple[str, str]:
    """Two client keys of the gateways these tests run: each key sees only its own files and stores."""
    return KEY, OTHER


@pytest.fixture(scope="session")
def gateway_config() -> Callable[..., dict[str, Any]]:
    """``gateway_config(tmp_dir, **file_search_settings)``: echo provider and model ``echo``,
    ``[tools.file_search]`` embedding with it into a SQLite file in ``tmp_dir``."""
    return _gateway_config


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A prefix no other test run uses; everything under it is deleted after the test."""
    prefix = f"mmtest:fs:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def pdf_of(pages: list[str]) -> bytes:
    """A small real PDF: one page per string, each line of it drawn in Helvetica (a text layer)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for text in pages:
        lines = text.split("\n")
        ops = (
            "BT /F1 11 Tf 14 TL 72 740 Td "
            + " ".join(
                "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for line in lines
            )
            + " ET"
        )
        stream = ops.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (font, content)
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="session")
def make_pdf() -> Callable[[list[str]], bytes]:
    """``make_pdf(pages)``: a PDF with one page per string (see ``pdf_of``)."""
    return pdf_of
