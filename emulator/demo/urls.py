"""The demo app's URLs: the library's endpoints, called by the local Cloud Tasks."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("tasks/", include("django_tasks_fs.urls"))]
