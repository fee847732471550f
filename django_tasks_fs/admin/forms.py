"""The scheduled-task form, and cron expressions in words."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.tasks.exceptions import InvalidTask

from ..exceptions import PayloadError, ScheduleNotFound, TaskNotImportable
from ..registry import firestore_backends
from ..results import load_task
from ..scheduling.cron import validate_cron, validate_time_zone
from ..store import validate_schedule_name
from ..store.codec import encode_json

WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def _weekdays(field: str) -> str | None:
    names: list[str] = []
    for part in field.split(","):
        if "-" in part:
            start, _, end = part.partition("-")
            if not (start.isdigit() and end.isdigit()):
                return None
            names.append(f"{WEEKDAYS[int(start) % 7]} to {WEEKDAYS[int(end) % 7]}")
        elif part.isdigit():
            names.append(WEEKDAYS[int(part) % 7])
        else:
            return None
    return ", ".join(names)


def describe_cron(expression: str) -> str:
    """The common cron shapes in words ('Every day at 06:30'); others as 'Custom schedule'."""
    fields = expression.split()
    if len(fields) != 5:
        return "Invalid schedule"
    minute, hour, day, month, weekday = fields
    if [hour, day, month, weekday] == ["*"] * 4:
        if minute == "*":
            return "Every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"Every {minute[2:]} minutes"
        if minute.isdigit():
            return f"Every hour at minute {int(minute)}"
    if not minute.isdigit():
        return "Custom schedule"
    if [day, month, weekday] == ["*"] * 3 and hour.startswith("*/") and hour[2:].isdigit():
        return f"Every {hour[2:]} hours at minute {int(minute)}"
    if not hour.isdigit():
        return "Custom schedule"
    at = f"{int(hour):02d}:{int(minute):02d}"
    if [day, month, weekday] == ["*"] * 3:
        return f"Every day at {at}"
    if [day, month] == ["*", "*"]:
        days = _weekdays(weekday)
        return f"Every {days} at {at}" if days else "Custom schedule"
    if weekday == "*" and day.isdigit():
        if month == "*":
            return f"On day {int(day)} of every month at {at}"
        if month.isdigit() and 1 <= int(month) <= 12:
            return f"Every {MONTHS[int(month) - 1]} {int(day)} at {at}"
    return "Custom schedule"


class ScheduledTaskForm(forms.Form):
    """Add or change a scheduled task; validates what schedule_task() would refuse."""

    name = forms.CharField(
        max_length=200, help_text="Letters, digits, '-' or '_'; also names the Cloud Scheduler job."
    )
    task_path = forms.CharField(
        label="Task", help_text="Dotted path of a @task, e.g. 'myapp.tasks.send_report'."
    )
    schedule = forms.CharField(
        label="Cron expression",
        help_text="5 fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'.",
    )
    time_zone = forms.CharField(initial="UTC", help_text="IANA name, e.g. 'Europe/Paris'.")
    backend = forms.ChoiceField()
    queue_name = forms.CharField(required=False, help_text="Empty: the task's queue.")
    priority = forms.IntegerField(required=False, help_text="Empty: the task's priority.")
    args = forms.CharField(
        initial="[]", widget=forms.Textarea(attrs={"rows": 3}), help_text="A JSON list."
    )
    kwargs = forms.CharField(
        initial="{}", widget=forms.Textarea(attrs={"rows": 3}), help_text="A JSON object."
    )
    enabled = forms.BooleanField(required=False, initial=True)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creating = creating
        backend_field = self.fields["backend"]
        assert isinstance(backend_field, forms.ChoiceField)
        backend_field.choices = [(alias, alias) for alias in firestore_backends()]
        if not creating:
            # The name is the document id and the backend picks the store: fixed once made.
            self.fields["name"].disabled = True
            self.fields["backend"].disabled = True

    @staticmethod
    def dump(value: Any) -> str:
        """JSON text for the args / kwargs fields."""
        return json.dumps(value, ensure_ascii=False)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        try:
            validate_schedule_name(name)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return name

    def clean_task_path(self) -> str:
        path: str = self.cleaned_data["task_path"].strip()
        try:
            load_task(path)
        except TaskNotImportable as exc:
            raise forms.ValidationError(f"Not a registered task: {exc}") from None
        return path

    def clean_schedule(self) -> str:
        expression = " ".join(self.cleaned_data["schedule"].split())
        try:
            return validate_cron(expression)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_time_zone(self) -> str:
        name: str = self.cleaned_data["time_zone"].strip()
        try:
            validate_time_zone(name)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return name

    def _json(self, field: str, kind: type, what: str) -> Any:
        try:
            value = json.loads(self.cleaned_data[field])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(value, kind):
            raise forms.ValidationError(f"Must be a JSON {what}, not {type(value).__name__}.")
        try:
            encode_json(value, where=field)
        except PayloadError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value

    def clean_args(self) -> list[Any]:
        value: list[Any] = self._json("args", list, 'list, e.g. [1, "a"]')
        return value

    def clean_kwargs(self) -> dict[str, Any]:
        value: dict[str, Any] = self._json("kwargs", dict, 'object, e.g. {"user_id": 1}')
        return value

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        backends = firestore_backends()
        alias, name, path = data.get("backend"), data.get("name"), data.get("task_path")
        if alias not in backends:
            return data
        backend = backends[alias]
        if self.creating and name:
            try:
                backend.schedules.get(name)
            except ScheduleNotFound:
                pass
            else:
                self.add_error("name", f"A scheduled task named {name!r} already exists.")
        if path:
            task = load_task(path)
            try:
                backend.validate_task(
                    task.using(
                        queue_name=data.get("queue_name") or task.queue_name,
                        priority=task.priority
                        if data.get("priority") is None
                        else data["priority"],
                        backend=alias,
                    )
                )
            except InvalidTask as exc:
                raise forms.ValidationError(f"Backend {alias!r} refuses this task: {exc}") from None
        return data
