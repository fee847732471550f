"""Mount with ``path("tasks/", include("django_tasks_fs.urls"))``; ``base_url`` points here."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "django_tasks_fs"

urlpatterns = [
    path("execute/", views.execute, name="execute_task"),
    path("schedule/", views.schedule, name="schedule_task"),
    path("sweep/", views.sweep_pending, name="sweep"),
]
