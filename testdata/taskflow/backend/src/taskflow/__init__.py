"""TaskFlow backend package: the task model and its in-memory store."""

from taskflow.models import Task, TaskStore, ValidationError

__version__ = "1.0.0"
__all__ = ["Task", "TaskStore", "ValidationError", "__version__"]
