"""URLs of the test project: the library's endpoints under /tasks/."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("tasks/", include("django_tasks_fs.urls"))]
