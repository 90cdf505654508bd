"""A folder of hostile files: every bad one is reported, none stops the run, all good ones land."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag.index import Index
from rag.settings import Settings
from tests.conftest import ROOT
from tests.fakes import HashEmbedder
from tests.test_readers import make_pdf

GOOD = {
    "good.md": "# Owls\n\nOwls hunt at night with silent flight feathers.\n",
    "nested/" + "/".join(f"d{i}" for i in range(40)) + "/deep.txt": "Deep files are found too.",
    "utf16.txt": None,  # written below with a BOM
    "page.html": None,
    "paper.pdf": None,
    "mixed.jsonl": None,
}


def build_torture_folder(root: Path) -> dict[str, str]:
    """Write the folder; returns bad file name -> the reason text expected in the report."""
    root.mkdir()
    for rel, text in GOOD.items():
        if text is not None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    (root / "utf16.txt").write_bytes("Ünïcode text in UTF-16 with a BOM.".encode("utf-16"))
    script = "var x = 1;\n" * 400_000  # ~4.8 MB of inline script
    (root / "page.html").write_text(
        f"<html><head><title>Page</title><script>{script}</script></head>"
        "<body><p>Visible paragraph about herons.</p></body></html>"
    )
    (root / "paper.pdf").write_bytes(make_pdf(["Page one about cranes.", "Page two."]))
    (root / "mixed.jsonl").write_text(
        '{"_id": "j1", "text": "Storks migrate far."}\n{broken\n'
        '{"_id": "j2"}\n[1, 2]\n{"_id": "j3", "text": "Egrets are white."}\n'
    )
    (root / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (root / "latin1.md").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "empty.md").write_bytes(b"")
    (root / "spaces.txt").write_text("   \n\n  \t\n")
    with (root / "huge.txt").open("wb") as f:  # 50 MB, no newline
        for _ in range(50):
            f.write(b"a" * (1 << 20))
    (root / "truncated.pdf").write_bytes(make_pdf(["Cut short"])[:120])
    (root / "scanned.pdf").write_bytes(make_pdf(["", ""]))
    (root / "loop").mkdir()
    os.symlink("..", root / "loop" / "up")
    os.symlink("missing-target.txt", root / "dangling.txt")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    return {
        "binary.txt": "binary",
        "latin1.md": "not valid UTF-8",
        "empty.md": "empty",
        "spaces.txt": "empty",
        "huge.txt": "limit",
        "truncated.pdf": "cannot parse PDF",
        "scanned.pdf": "no text layer",
        "mixed.jsonl:2": "JSON",
        "mixed.jsonl:3": "text",
        "mixed.jsonl:4": "object",
    }


def test_torture_folder(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    expected_failures = build_torture_folder(docs)
    embedder = HashEmbedder()
    index = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    report = index.add(docs)

    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == set(expected_failures), failed
    for name, needle in expected_failures.items():
        assert needle.lower() in failed[name].lower(), (name, failed[name])
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert "image.png" in skipped and "dangling.txt" in skipped
    assert "up" in skipped or not any("loop/up/" in str(s.path) for s in report.skipped)

    ids = {h.doc_id for h in index.search("anything at all", k=100)}
    assert ids == {
        "good.md", next(k for k in GOOD if k.endswith("deep.txt")), "utf16.txt", "page.html",
        "paper.pdf", "j1", "j3",
    }  # fmt: skip
    html_text = next(h.text for h in index.search("herons", k=100) if h.doc_id == "page.html")
    assert "herons" in html_text and "var x" not in html_text
    pdf = next(h for h in index.search("cranes", k=100) if h.doc_id == "paper.pdf")
    assert pdf.page_start == 1
    # a second run changes nothing; unreadable files are tried again, while the bad
    # lines of the unchanged JSONL file are not re-read
    again = index.add(docs)
    assert again.added == again.updated == again.removed == 0
    assert {Path(f.path).name for f in again.failed} == {
        k for k in expected_failures if not k.startswith("mixed.jsonl")
    }


def test_torture_folder_memory_stays_bounded(tmp_path: Path) -> None:
    """Ingest in a child process and read its peak resident memory."""
    docs = tmp_path / "docs"
    build_torture_folder(docs)
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.fakes import HashEmbedder
        from rag.index import Index
        from rag.settings import Settings
        e = HashEmbedder()
        index = Index.create({str(tmp_path / "idx")!r}, Settings(embedder=e.name), e)
        report = index.add({str(docs)!r})
        # VmHWM belongs to this process image; ru_maxrss would include the parent's
        # peak from before the fork
        status = open("/proc/self/status").read()
        peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
        print(json.dumps({{"peak_mb": peak_mb, "failed": len(report.failed)}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == 10
    # the 50 MB file is refused from its size, never read: peak stays near the baseline
    assert result["peak_mb"] < 400, result


def without_permission_override() -> list[str]:
    """A command prefix under which file permissions bind, even for root.

    Root normally reads any file; dropping the two capabilities that let it makes a
    permission test meaningful when the tests run as root, as CI does.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop the file-permission override")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    docs, index_dir = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "ok.txt").write_text("Readable.")
    (docs / "secret.txt").write_text("Hidden.")
    (docs / "secret.txt").chmod(0)
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.fakes import HashEmbedder
        from rag.index import Index
        from rag.settings import Settings
        e = HashEmbedder()
        index = Index.create({str(index_dir)!r}, Settings(embedder=e.name), e)
        report = index.add({str(docs)!r})
        print(json.dumps({{"added": report.added,
                           "failed": [[f.path, f.reason] for f in report.failed]}}))
        """
    )
    out = subprocess.run(
        [*without_permission_override(), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["added"] == 1
    [[path, reason]] = result["failed"]
    assert Path(path).name == "secret.txt" and "permission" in reason
