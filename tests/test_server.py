"""``rag serve`` through a real uvicorn process on a free local port."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.index import Index
from rag.settings import Settings
from tests.conftest import CORPUS, ROOT
from tests.conftest import run_cli as run
from tests.fakes import HashEmbedder
from tests.serving import DRIP_SECONDS, DRIP_TOKENS, SLOW_MARK

QUESTION = "what is the reparameterization trick?"


class Server:
    """``rag serve ARGS`` (fake models known) in a process of its own."""

    def __init__(self, folder: Path, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"server-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("RAG_API_TOKEN", None)
        command = [sys.executable, "-m", "tests.serving", "serve", "--port", str(self.port), *args]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        self._wait_until_up()

    def _wait_until_up(self, seconds: float = 120.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"rag serve exited: {self.log.read_text()}")
            try:
                call("GET", self.url + "/v1/status", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"rag serve did not answer: {self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def call(
    method: str,
    url: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; a JSON ``body`` is sent as JSON."""
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def ok(method: str, url: str, body: Any = None, **kw: Any) -> Any:
    status, _, raw = call(method, url, body, **kw)
    assert status in (200, 201), (status, raw[:500])
    return json.loads(raw)


def refused(status: int, method: str, url: str, body: Any = None, **kw: Any) -> dict[str, Any]:
    """The error of a request that must be refused with ``status``, in the one shape."""
    got, headers, raw = call(method, url, body, **kw)
    assert got == status, (got, raw[:500])
    assert headers.get("content-type", headers.get("Content-Type", "")).startswith(
        "application/json"
    )
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type"} and error["message"]
    return error


def oversized(
    server: Server, data: bytes, headers: dict[str, str], chunked: bool
) -> tuple[int, bytes]:
    """Upload ``data``; the server may answer and close before the body is all sent."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest("POST", "/v1/documents")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader(*(("Transfer-Encoding", "chunked") if chunked else
                         ("Content-Length", str(len(data)))))  # fmt: skip
        conn.endheaders()
        try:
            step = 256 * 1024
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except OSError:  # refused while sending: the answer is waiting all the same
            pass
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def multipart(files: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, content in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def events(raw: bytes) -> list[tuple[str, Any]]:
    """(event, data) of a text/event-stream body."""
    out = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            data = fields["data"]
            out.append((fields.get("event", ""), data if data == "[DONE]" else json.loads(data)))
    return out


def build(folder: Path, docs: Path) -> Path:
    index = folder / "idx"
    e = HashEmbedder()
    with Index.create(index, Settings(embedder=e.name, generator="fake-echo"), e) as idx:
        idx.add(docs)
    return index


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def index(folder: Path) -> Path:
    docs = folder / "docs"
    shutil.copytree(CORPUS, docs, ignore=shutil.ignore_patterns("questions.jsonl"))
    return build(folder, docs)


@pytest.fixture(scope="module")
def server(folder: Path, index: Path) -> Iterator[Server]:
    srv = Server(folder, "--index", str(index), "--max-upload-mb", "2")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


pytestmark = pytest.mark.usefixtures("cli_fakes")


def test_search_gives_the_hits_rag_search_json_prints(server: Server, index: Path) -> None:
    query = "variational autoencoder reparameterization trick"
    got = ok("POST", server.url + "/v1/search", {"query": query, "k": 4})
    code, out, _ = run("search", query, "--index", str(index), "-k", "4", "--json")
    assert code == 0
    assert got == {"hits": json.loads(out)["hits"]}
    assert len(got["hits"]) == 4 and got["hits"][0]["doc_id"] == "variational-autoencoders.md"


def test_search_takes_a_mode_and_a_filter(server: Server) -> None:
    body = {"query": "training", "k": 5, "mode": "lexical", "where": {"path": "diff*"}}
    hits = ok("POST", server.url + "/v1/search", body)["hits"]
    assert hits and {h["doc_id"] for h in hits} == {"diffusion-models.md"}


def test_ask_gives_the_object_rag_ask_json_prints(server: Server, index: Path) -> None:
    got = ok("POST", server.url + "/v1/ask", {"question": QUESTION})
    code, out, _ = run("ask", QUESTION, "--index", str(index), "--json")
    assert code == 0
    assert got == json.loads(out)
    assert not got["abstained"] and got["citations"] and "[1]" in got["answer"]


def test_ask_streams_tokens_then_one_answer(server: Server) -> None:
    status, headers, raw = call(
        "POST", server.url + "/v1/ask", {"question": QUESTION, "stream": True}
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    stream = events(raw)
    kinds = [kind for kind, _ in stream]
    assert kinds[-1] == "answer" and kinds.count("answer") == 1
    assert kinds[:-1] and set(kinds[:-1]) == {"token"}
    answer = stream[-1][1]
    assert "".join(data["text"] for _, data in stream[:-1]).strip() == answer["generated"]
    assert answer == ok("POST", server.url + "/v1/ask", {"question": QUESTION})


def test_status_is_what_rag_status_json_prints(server: Server, index: Path) -> None:
    got = ok("GET", server.url + "/v1/status")
    _, out, _ = run("status", "--index", str(index), "--json")
    expected = json.loads(out)
    # how many vectors are loaded depends on the process: none before its first search
    assert got.pop("vectors") in (None, got["chunks"]) and expected.pop("vectors") is None
    assert got == expected


def test_text_endpoint_gives_exactly_the_cited_slice(server: Server) -> None:
    hits = ok("POST", server.url + "/v1/search", {"query": "diffusion noise schedule", "k": 3})
    for hit in hits["hits"]:
        url = (
            f"{server.url}/v1/documents/{hit['doc_id']}/text?start={hit['start']}&end={hit['end']}"
        )
        got = ok("GET", url)
        assert got["text"] == hit["text"]
        assert (got["doc_id"], got["start"], got["end"]) == (
            hit["doc_id"],
            hit["start"],
            hit["end"],
        )
        assert got["source"] == hit["source"]
    answer = ok("POST", server.url + "/v1/ask", {"question": QUESTION})
    cited = answer["citations"][0]
    quote = ok("GET", f"{server.url}/v1/documents/{cited['doc_id']}/text"
               f"?start={cited['quote_start']}&end={cited['quote_end']}")  # fmt: skip
    assert quote["text"] and quote["text"] in answer["answer"]
    whole = ok("GET", f"{server.url}/v1/documents/{cited['doc_id']}/text")
    assert whole["start"] == 0 and len(whole["text"]) == whole["end"] > cited["end"]
    refused(400, "GET", f"{server.url}/v1/documents/{cited['doc_id']}/text?start=5&end=2")


def test_documents_are_listed_in_pages(server: Server) -> None:
    total = ok("GET", server.url + "/v1/status")["documents"]
    first = ok("GET", server.url + "/v1/documents?offset=0&limit=5")
    second = ok("GET", server.url + "/v1/documents?offset=5&limit=5")
    assert first["total"] == total and len(first["documents"]) == 5
    assert set(first["documents"][0]) == {"doc_id", "source", "title", "type", "chunks"}
    ids = [d["doc_id"] for d in first["documents"] + second["documents"]]
    assert len(set(ids)) == 10 and all(d["chunks"] > 0 for d in first["documents"])
    everything = ok("GET", server.url + f"/v1/documents?limit={total + 10}")["documents"]
    assert len(everything) == total
    refused(400, "GET", server.url + "/v1/documents?offset=-1")


def test_an_upload_is_searchable_until_deleted(server: Server, index: Path) -> None:
    text = b"# Quokka notes\n\nThe quokka is a small marsupial that smiles at zebrafish.\n"
    data, headers = multipart({"../../quokka.md": text, "notes.txt": b"Plain zebrafish notes.\n"})
    report = ok("POST", server.url + "/v1/documents", data=data, headers=headers)
    assert report["files"] == ["quokka.md", "notes.txt"] and report["added"] == 2
    assert (index / "uploads" / "quokka.md").read_bytes() == text
    assert not (index.parent / "quokka.md").exists() and not (index / "quokka.md").exists()
    hits = ok("POST", server.url + "/v1/search", {"query": "quokka marsupial", "k": 1})["hits"]
    assert hits[0]["doc_id"] == "quokka.md"
    listed = ok("GET", server.url + "/v1/documents?limit=1000")["documents"]
    assert "quokka.md" in {d["doc_id"] for d in listed}

    removed = ok("DELETE", server.url + "/v1/documents/quokka.md")
    assert removed["removed"] == 1 and removed["unmatched"] == []
    assert not (index / "uploads" / "quokka.md").exists()
    refused(404, "DELETE", server.url + "/v1/documents/quokka.md")
    refused(404, "GET", server.url + "/v1/documents/quokka.md/text")
    hits = ok("POST", server.url + "/v1/search", {"query": "quokka marsupial", "k": 3})["hits"]
    assert "quokka.md" not in {h["doc_id"] for h in hits}
    assert ok("DELETE", server.url + "/v1/documents/notes.txt")["removed"] == 1


def test_the_text_of_a_changed_or_deleted_file_is_refused(server: Server, index: Path) -> None:
    data, headers = multipart({"changing.md": b"# Changing\n\nFirst words.\n"})
    ok("POST", server.url + "/v1/documents", data=data, headers=headers)
    assert ok("GET", server.url + "/v1/documents/changing.md/text")["text"].endswith("words.\n")
    saved = index / "uploads" / "changing.md"
    saved.write_text("# Changing\n\nOther words now.\n")
    error = refused(409, "GET", server.url + "/v1/documents/changing.md/text")
    assert "changed since 'changing.md' was indexed" in error["message"]
    saved.unlink()
    assert (
        "the file is gone"
        in refused(409, "GET", server.url + "/v1/documents/changing.md/text")["message"]
    )
    assert ok("DELETE", server.url + "/v1/documents/changing.md")["removed"] == 1


def test_hostile_requests_are_refused_and_the_server_keeps_serving(
    server: Server, index: Path
) -> None:
    documents = ok("GET", server.url + "/v1/status")["documents"]
    for doc in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd"):
        error = refused(404, "GET", f"{server.url}/v1/documents/{doc}/text")
        assert "root:" not in error["message"]
    # a path, even one that holds every indexed file, is never taken for one
    for target in ("%2F", str(index.parent).replace("/", "%2F"), ".", "docs"):
        refused(404, "DELETE", f"{server.url}/v1/documents/{target}")
    assert ok("GET", server.url + "/v1/status")["documents"] == documents

    for name in (".hidden.md", "..", "evil.exe", "/"):
        data, headers = multipart({name: b"some text\n"})
        refused(400, "POST", server.url + "/v1/documents", data=data, headers=headers)
    data, headers = multipart({"empty.md": b"  \n"})
    assert (
        "empty.md: empty file"
        in refused(400, "POST", server.url + "/v1/documents", data=data, headers=headers)["message"]
    )
    assert not (index / "uploads" / "empty.md").exists()
    data, headers = multipart({"big.txt": b"word " * 700_000})
    for chunked in (False, True):  # the length declared, or found out while reading
        status, raw = oversized(server, data, headers, chunked)
        assert status == 413 and json.loads(raw)["error"]["type"] == "too_large", raw
    assert not (index / "uploads" / "big.txt").exists()

    bad_json = {"Content-Type": "application/json"}
    assert (
        refused(400, "POST", server.url + "/v1/search", data=b'{"query": ', headers=bad_json)[
            "type"
        ]
        == "invalid_json"
    )
    assert "query" in refused(422, "POST", server.url + "/v1/search", {"k": 3})["message"]
    assert refused(422, "POST", server.url + "/v1/ask", {"question": ["a"]})["type"] == (
        "invalid_request"
    )
    huge = refused(400, "POST", server.url + "/v1/ask", {"question": "why " * 250_000})
    assert huge == {
        "message": "the question is 1000000 characters long; the limit is 2000",
        "type": "invalid_value",
    }
    huge = refused(
        400, "POST", server.url + "/v1/ask", {"question": "why " * 250_000, "stream": True}
    )
    assert "the limit is 2000" in huge["message"]
    assert (
        "search mode must be one of"
        in refused(400, "POST", server.url + "/v1/search", {"query": "x", "mode": "psychic"})[
            "message"
        ]
    )
    assert (
        "unknown file type"
        in refused(
            400, "POST", server.url + "/v1/search", {"query": "x", "where": {"type": "exe"}}
        )["message"]
    )
    refused(404, "GET", server.url + "/v1/nothing")
    refused(405, "PUT", server.url + "/v1/search", {"query": "x"})

    hits = ok("POST", server.url + "/v1/search", {"query": "diffusion", "k": 2})["hits"]
    assert len(hits) == 2


def test_chat_completions_answer_with_sources(server: Server) -> None:
    body = {
        "model": "rag",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ],
        "temperature": 0.2,
    }
    got = ok("POST", server.url + "/v1/chat/completions", body)
    assert got["object"] == "chat.completion"
    message = got["choices"][0]["message"]
    assert message["role"] == "assistant" and got["choices"][0]["finish_reason"] == "stop"
    assert (
        "[1]" in message["content"]
        and "\n\nSources:\n[1] variational-autoencoders.md:" in (message["content"])
    )
    assert got["sources"][0]["n"] == 1 and got["sources"][0]["cited"] is True
    assert got["sources"][0]["doc_id"] == "variational-autoencoders.md"
    refused(400, "POST", server.url + "/v1/chat/completions",
            {"messages": [{"role": "system", "content": "hi"}]})  # fmt: skip
    refused(422, "POST", server.url + "/v1/chat/completions", {"messages": []})


def test_chat_completions_stream_ends_with_done(server: Server) -> None:
    body = {"model": "rag", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    status, headers, raw = call("POST", server.url + "/v1/chat/completions", body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    stream = [data for _, data in events(raw)]
    assert stream[-1] == "[DONE]"
    chunks = stream[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    whole = ok("POST", server.url + "/v1/chat/completions", {**body, "stream": False})
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["sources"] == whole["sources"]


def test_no_cross_origin_calls_unless_allowed(server: Server) -> None:
    origin = {"Origin": "http://evil.example"}
    status, headers, _ = call("GET", server.url + "/v1/status", headers=origin)
    assert status == 200 and "access-control-allow-origin" not in {h.lower() for h in headers}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    status, headers, _ = call("OPTIONS", server.url + "/v1/search", headers=preflight)
    assert status == 405 and "access-control-allow-origin" not in {h.lower() for h in headers}


def test_models_and_openapi(server: Server) -> None:
    models = ok("GET", server.url + "/v1/models")
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["rag"]
    refused(404, "GET", server.url + "/docs")  # its page would load scripts from a CDN
    spec = ok("GET", server.url + "/openapi.json")
    assert {"/v1/search", "/v1/ask", "/v1/status", "/v1/documents", "/v1/chat/completions"} <= set(
        spec["paths"]
    )


def test_a_token_is_required_when_given(folder: Path, index: Path) -> None:
    origin = "http://app.example"
    srv = Server(folder, "--index", str(index), "--token", "s3cret", "--cors-origin", origin)
    try:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        status, headers, _ = call("OPTIONS", srv.url + "/v1/search", headers=preflight)
        assert status == 200 and headers["access-control-allow-origin"] == origin
        assert refused(401, "GET", srv.url + "/v1/status")["type"] == "unauthorized"
        refused(401, "GET", srv.url + "/v1/status", headers={"Authorization": "Bearer wrong"})
        refused(401, "GET", srv.url + "/openapi.json")
        refused(401, "POST", srv.url + "/v1/search", {"query": "diffusion"})
        good = {"Authorization": "Bearer s3cret"}
        assert ok("POST", srv.url + "/v1/search", {"query": "diffusion"}, headers=good)["hits"]
    finally:
        assert srv.stop() == 0


def test_binding_every_address_needs_a_token(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_API_TOKEN", raising=False)
    code, _, err = run("serve", "--index", str(index), "--host", "0.0.0.0")
    assert code == 1
    assert "--host 0.0.0.0 lets other machines reach the index: give --token TOKEN" in err


def test_a_postgresql_index_needs_an_uploads_folder() -> None:
    code, _, err = run("serve", "--index", "postgresql://rag@127.0.0.1:1/none?schema=x")
    assert code == 2 and "give --uploads FOLDER" in err


def test_document_pages_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    e = HashEmbedder()
    with Index.create(pg_url, Settings(embedder=e.name), e) as idx:
        idx.add(CORPUS)
        page = idx.store.document_page(3, 4)
        folder = Index.create(tmp_path / "idx", Settings(embedder=e.name), e)
        with folder:
            folder.add(CORPUS)
            assert page == folder.store.document_page(3, 4) and len(page) == 4


def test_serving_a_postgresql_index(pg_url: str, tmp_path: Path) -> None:
    e = HashEmbedder()
    with Index.create(pg_url, Settings(embedder=e.name, generator="fake-echo"), e) as idx:
        idx.add(CORPUS)
        expected = [h.chunk_id for h in idx.search("diffusion noise schedule", 4)]
    uploads = tmp_path / "uploads"
    srv = Server(tmp_path, "--index", pg_url, "--uploads", str(uploads))
    try:
        hits = ok("POST", srv.url + "/v1/search", {"query": "diffusion noise schedule", "k": 4})
        assert [h["chunk_id"] for h in hits["hits"]] == expected
        answer = ok("POST", srv.url + "/v1/ask", {"question": QUESTION})
        cited = answer["citations"][0]
        quote = ok("GET", f"{srv.url}/v1/documents/{cited['doc_id']}/text"
                   f"?start={cited['quote_start']}&end={cited['quote_end']}")  # fmt: skip
        assert quote["text"] and quote["text"] in answer["answer"]

        data, headers = multipart({"quokka.md": b"# Quokka\n\nThe quokka is a marsupial.\n"})
        assert ok("POST", srv.url + "/v1/documents", data=data, headers=headers)["added"] == 1
        assert (uploads / "quokka.md").exists()
        top = ok("POST", srv.url + "/v1/search", {"query": "quokka marsupial", "k": 1})["hits"]
        assert top[0]["doc_id"] == "quokka.md"
        assert ok("DELETE", srv.url + "/v1/documents/quokka.md")["removed"] == 1
        top = ok("POST", srv.url + "/v1/search", {"query": "quokka marsupial", "k": 3})["hits"]
        assert "quokka.md" not in {h["doc_id"] for h in top}
        assert ok("GET", srv.url + "/v1/status")["documents"] == len(list(CORPUS.glob("*.md")))
    finally:
        assert srv.stop() == 0, srv.log.read_text()


def test_a_full_ask_queue_answers_503_while_searches_go_on(folder: Path, index: Path) -> None:
    srv = Server(folder, "--index", str(index), "--generator", "fake-slow", "--ask-queue", "0")
    try:
        slow = {"question": QUESTION, "answer_mode": "generative"}  # the generator runs
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(call("POST", srv.url + "/v1/ask", slow)[0])
        )
        first.start()
        time.sleep(0.5)
        status, headers, raw = call("POST", srv.url + "/v1/ask", slow)
        assert status == 503, raw
        assert int(headers["retry-after"]) >= 1
        assert json.loads(raw)["error"]["type"] == "busy"
        chat = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
        assert call("POST", srv.url + "/v1/chat/completions", chat)[0] == 503
        started = time.monotonic()
        assert ok("POST", srv.url + "/v1/search", {"query": "diffusion"})["hits"]
        assert time.monotonic() - started < 1.5  # not behind the answer being generated
        first.join()
        assert results == [200]
    finally:
        assert srv.stop() == 0


def test_a_stream_its_client_drops_gives_up_its_place(folder: Path, index: Path) -> None:
    srv = Server(folder, "--index", str(index), "--generator", "fake-drip", "--ask-queue", "0")
    try:
        body = {"question": QUESTION, "answer_mode": "generative"}
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        conn.request("POST", "/v1/ask", json.dumps({**body, "stream": True}),
                     {"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        assert response.status == 200
        assert response.read1().startswith(b"event: token")
        response.close()
        conn.close()  # the client goes away after the first token
        dropped = time.monotonic()
        whole = DRIP_TOKENS * DRIP_SECONDS  # what the dropped answer would still take
        while True:
            tried = time.monotonic()
            status, _, raw = call("POST", srv.url + "/v1/ask", body)
            if status != 503:
                break
            assert tried - dropped < whole, "the dropped answer kept its place to the end"
            time.sleep(0.1)
        assert status == 200, raw
        assert tried - dropped < whole / 2
    finally:
        assert srv.stop() == 0


def test_sigterm_lets_an_upload_being_indexed_finish(folder: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs, ignore=shutil.ignore_patterns("questions.jsonl"))
    index = build(tmp_path, docs)
    srv = Server(folder, "--index", str(index))
    results: list[int] = []
    data, headers = multipart({"late.md": f"# Late\n\nA document {SLOW_MARK}.\n".encode()})
    upload = threading.Thread(
        target=lambda: results.append(
            call("POST", srv.url + "/v1/documents", data=data, headers=headers)[0]
        )
    )
    upload.start()
    time.sleep(0.7)  # the upload is being embedded
    started = time.monotonic()
    hits = ok("POST", srv.url + "/v1/search", {"query": "diffusion noise", "k": 2})["hits"]
    assert time.monotonic() - started < 1.0 and len(hits) == 2  # not held up by the ingest
    assert srv.stop() == 0, srv.log.read_text()
    upload.join()
    assert results == [201]
    with Index.open(index) as idx:
        assert [d.doc_id for d in idx.store.documents_with_id("late.md")] == ["late.md"]


@pytest.mark.models
def test_packaged_models_answer_over_http(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("variational-autoencoders.md", "diffusion-models.md"):
        shutil.copy(CORPUS / name, docs / name)
    index = tmp_path / "idx"
    with Index.create(index) as idx:
        idx.add(docs)
    srv = Server(tmp_path, "--index", str(index))
    try:
        answer = ok("POST", srv.url + "/v1/ask", {"question": QUESTION}, timeout=300)
        assert not answer["abstained"] and answer["citations"]
        assert answer["citations"][0]["doc_id"] == "variational-autoencoders.md"
    finally:
        assert srv.stop() == 0
