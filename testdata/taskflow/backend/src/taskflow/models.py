"""Task model and a thread-safe in-memory store.

Uses ``taskflow_deps.slugify``, installed from its wheel into the base's
site-packages, so importing this module fails loudly when the packages layer
is missing.
"""

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from taskflow_deps import slugify

MAX_TITLE_LENGTH = 200


class ValidationError(ValueError):
    """Raised for a request payload that does not describe a valid task."""


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def clean_title(value):
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("title must be a non-empty string")
    title = " ".join(value.split())
    if len(title) > MAX_TITLE_LENGTH:
        raise ValidationError(f"title must be at most {MAX_TITLE_LENGTH} characters")
    return title


@dataclass
class Task:
    id: int
    title: str
    done: bool = False
    slug: str = ""
    created_at: str = field(default_factory=_now)
    updated_at: str = ""

    def __post_init__(self):
        self.slug = self.slug or slugify(self.title)
        self.updated_at = self.updated_at or self.created_at

    def to_dict(self):
        return asdict(self)


class TaskStore:
    """Tasks kept in process memory; every method is safe across threads."""

    def __init__(self, seed=()):
        self._lock = threading.Lock()
        self._tasks = {}
        self._next_id = 1
        for title in seed:
            self.create(title)

    def __len__(self):
        with self._lock:
            return len(self._tasks)

    def list(self):
        with self._lock:
            return [t.to_dict() for t in sorted(self._tasks.values(), key=lambda t: t.id)]

    def get(self, task_id):
        with self._lock:
            task = self._tasks.get(task_id)
            return task.to_dict() if task else None

    def create(self, title):
        title = clean_title(title)
        with self._lock:
            task = Task(id=self._next_id, title=title)
            self._tasks[task.id] = task
            self._next_id += 1
            return task.to_dict()

    def update(self, task_id, changes):
        if not isinstance(changes, dict):
            raise ValidationError("body must be a JSON object")
        unknown = set(changes) - {"title", "done"}
        if unknown:
            raise ValidationError("unknown fields: " + ", ".join(sorted(unknown)))
        if "done" in changes and not isinstance(changes["done"], bool):
            raise ValidationError("done must be true or false")
        title = clean_title(changes["title"]) if "title" in changes else None
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            if title is not None:
                task.title = title
                task.slug = slugify(title)
            if "done" in changes:
                task.done = changes["done"]
            task.updated_at = _now()
            return task.to_dict()

    def delete(self, task_id):
        with self._lock:
            return self._tasks.pop(task_id, None) is not None
