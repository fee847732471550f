"""URLs of the test project: the library's endpoints under /tasks/, the admin under /admin/."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("tasks/", include("django_tasks_fs.urls")),
    path("admin/", admin.site.urls),
]
