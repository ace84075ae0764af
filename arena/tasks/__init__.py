"""Benchmark tasks. `task_info` and `TASKS` are plain data; `make_task` builds the data or environment."""

from arena.tasks.base import Task, TaskInfo
from arena.tasks.registry import TASKS, check_architecture, check_task_options, make_task, task_info, task_names

__all__ = ["TASKS", "Task", "TaskInfo", "check_architecture", "check_task_options", "make_task", "task_info", "task_names"]
