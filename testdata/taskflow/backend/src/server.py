#!/usr/bin/env python3
"""TaskFlow backend: a small JSON API on the Python standard library.

Routes:
  GET    /api/health        liveness + which runtime settings are configured
  GET    /api/tasks         list tasks
  POST   /api/tasks         create a task from {"title": "..."}
  GET    /api/tasks/<id>    one task
  PATCH  /api/tasks/<id>    change {"title": "...", "done": true|false}
  DELETE /api/tasks/<id>    remove a task

Settings come from the environment at run time, never from the image:
  PORT (default 8000), HOST (default 0.0.0.0),
  DATABASE_URL and OPENROUTER_API_KEY (only reported as configured or not;
  their values are never logged or returned).
"""

import json
import logging
import os
import re
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import taskflow_deps
import tfnative
from taskflow import TaskStore, ValidationError, __version__

SERVICE = "taskflow-backend"
SECRET_SETTINGS = ("DATABASE_URL", "OPENROUTER_API_KEY")
MAX_BODY_BYTES = 64 * 1024
TASK_PATH = re.compile(r"^/api/tasks/(\d+)$")
SEED_TASKS = (
    "Write the release notes",
    "Review the onboarding checklist",
    "Plan the Q3 roadmap",
)

log = logging.getLogger("taskflow")
store = TaskStore(seed=SEED_TASKS)


def configured(name):
    """True when an environment variable is set to a non-empty value."""
    return bool(os.environ.get(name, "").strip())


def health_payload():
    return {
        "status": "ok",
        "service": SERVICE,
        "version": __version__,
        "dependencies": {"taskflow_deps": taskflow_deps.__version__, "tfnative": tfnative.__version__},
        # computed by the native library, so a wrong-architecture build fails here
        "native": {"arch": tfnative.arch(), "add": tfnative.add(2, 3)},
        "config": {name.lower() + "_configured": configured(name) for name in SECRET_SETTINGS},
        "tasks": len(store),
    }


class HTTPError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Handler(BaseHTTPRequestHandler):
    server_version = "taskflow-backend/" + __version__
    protocol_version = "HTTP/1.1"

    # --- plumbing -------------------------------------------------------

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def send_json(self, status, payload=None, headers=None):
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_json(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "body must be valid JSON")
        if not isinstance(data, dict):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return data

    def dispatch(self):
        path = urlsplit(self.path).path.rstrip("/") or "/"
        try:
            route, args, allowed = self.route(path)
            if route is None:
                raise HTTPError(HTTPStatus.NOT_FOUND, "not found")
            method = "GET" if self.command == "HEAD" else self.command
            handler = allowed.get(method)
            if handler is None:
                raise HTTPError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"method {self.command} not allowed",
                    {"Allow": ", ".join(sorted(allowed))},
                )
            handler(*args)
        except HTTPError as err:
            self.send_json(err.status, {"error": err.message}, err.headers)
        except ValidationError as err:
            self.send_json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(err)})
        except Exception:  # keep serving; the traceback goes to the log
            log.exception("unhandled error for %s %s", self.command, self.path)
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def route(self, path):
        if path == "/api/health":
            return "health", (), {"GET": self.get_health}
        if path == "/api/tasks":
            return "tasks", (), {"GET": self.list_tasks, "POST": self.create_task}
        match = TASK_PATH.match(path)
        if match:
            allowed = {"GET": self.get_task, "PATCH": self.update_task, "DELETE": self.delete_task}
            return "task", (int(match.group(1)),), allowed
        return None, (), {}

    do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = do_PUT = dispatch

    # --- endpoints ------------------------------------------------------

    def get_health(self):
        self.send_json(HTTPStatus.OK, health_payload())

    def list_tasks(self):
        tasks = store.list()
        self.send_json(HTTPStatus.OK, {"tasks": tasks, "count": len(tasks)})

    def create_task(self):
        task = store.create(self.read_json().get("title"))
        self.send_json(HTTPStatus.CREATED, task, {"Location": f"/api/tasks/{task['id']}"})

    def get_task(self, task_id):
        task = store.get(task_id)
        if task is None:
            raise HTTPError(HTTPStatus.NOT_FOUND, f"task {task_id} not found")
        self.send_json(HTTPStatus.OK, task)

    def update_task(self, task_id):
        task = store.update(task_id, self.read_json())
        if task is None:
            raise HTTPError(HTTPStatus.NOT_FOUND, f"task {task_id} not found")
        self.send_json(HTTPStatus.OK, task)

    def delete_task(self, task_id):
        if not store.delete(task_id):
            raise HTTPError(HTTPStatus.NOT_FOUND, f"task {task_id} not found")
        self.send_json(HTTPStatus.NO_CONTENT)


def main():
    logging.basicConfig(
        stream=sys.stdout,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8000"))

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(signum, _frame):
        log.info("received %s, shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, so it cannot run on
        # the thread that is inside serve_forever() (this one).
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    settings = ", ".join(
        f"{name}={'set' if configured(name) else 'unset'}" for name in SECRET_SETTINGS
    )
    log.info(
        "%s %s listening on %s:%d (taskflow_deps %s; %s)",
        SERVICE, __version__, host, port, taskflow_deps.__version__, settings,
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
