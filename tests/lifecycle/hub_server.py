"""A local HTTP server speaking as much of the Hugging Face hub's protocol as
`huggingface_hub.snapshot_download` uses (checked against huggingface_hub 0.36):

- `GET /api/models/{repo}` and `GET /api/models/{repo}/revision/{rev}`: the repo's info,
  with `sha` (the commit the revision points to) and `siblings` (`rfilename` each);
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: the file, with the headers the client checks:
  `X-Repo-Commit`, `ETag` (the file's sha256, as the hub sends for LFS files),
  `Content-Length`, and `Range` requests answered with 206 (resumed downloads);
- errors as 404s carrying the hub's `X-Error-Code` (RepoNotFound, RevisionNotFound,
  EntryNotFound), which huggingface_hub turns into its typed exceptions.

`cut_after[path] = n` makes every GET of that file stop after byte n and drop the
connection: an interrupted download. `seconds_per_chunk[path]` sends it slowly.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class HubRepo:
    """A repo: commits (sha -> files) and refs (branch or tag -> sha)."""

    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def commit(self, files: dict[str, bytes], ref: str = "main") -> str:
        """Add a commit holding `files`, point `ref` at it, and return its sha."""
        digest = hashlib.sha1(f"{self.repo_id}{len(self.commits)}".encode())
        for name in sorted(files):
            digest.update(name.encode() + hashlib.sha256(files[name]).digest())
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha

    def commit_folder(self, folder: Path, ref: str = "main") -> str:
        """Commit every file under `folder` (relative paths as names)."""
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }
        return self.commit(files, ref)

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


class HubServer:
    """The server, on a free loopback port, in a background thread (a context manager)."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.cut_after: dict[str, int] = {}
        self.seconds_per_chunk: dict[str, float] = {}  # slow files: sleep per 64 KiB sent
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_repo(self, repo_id: str) -> HubRepo:
        repo = HubRepo(repo_id)
        self.repos[repo_id] = repo
        return repo

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_CHUNK = 1 << 16


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._route(send_body=False)

        def do_GET(self) -> None:
            self._route(send_body=True)

        def _route(self, send_body: bool) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if path.startswith("/api/models/"):
                self._model_info(path.removeprefix("/api/models/"))
            elif "/resolve/" in path:
                repo_id, _, rest = path.lstrip("/").partition("/resolve/")
                revision, _, filename = rest.partition("/")
                self._file(repo_id, revision, filename, send_body)
            else:
                self._error(404, "RepoNotFound", "not found")

        def _model_info(self, rest: str) -> None:
            repo_id, _, revision = rest.partition("/revision/")
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            commit = repo.resolve(revision or "main")
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            body = {
                "_id": repo_id,
                "id": repo_id,
                "modelId": repo_id,
                "sha": commit,
                "private": False,
                "siblings": [{"rfilename": name} for name in sorted(repo.commits[commit])],
            }
            self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def _file(self, repo_id: str, revision: str, filename: str, send_body: bool) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            commit = repo.resolve(revision)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            data = repo.commits[commit].get(filename)
            if data is None:
                return self._error(404, "EntryNotFound", f"{filename} not found", commit)
            headers = {
                "X-Repo-Commit": commit,
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            start, status = 0, 200
            match = _RANGE.match(self.headers.get("Range") or "")
            if match and send_body:
                start, status = int(match.group(1)), 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            headers["Content-Length"] = str(len(body))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if not send_body:
                return
            cut = hub.cut_after.get(filename)
            if cut is not None:
                self.wfile.write(body[: max(0, cut - start)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the download breaks mid-file
                return
            delay = hub.seconds_per_chunk.get(filename)
            if delay is None:
                self.wfile.write(body)
                return
            for offset in range(0, len(body), _CHUNK):
                self.wfile.write(body[offset : offset + _CHUNK])
                self.wfile.flush()
                time.sleep(delay)

        def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
            headers = {"Content-Type": "application/json", "X-Error-Code": code}
            if commit:
                headers["X-Repo-Commit"] = commit
            self._send(status, json.dumps({"error": message}).encode(), headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler
