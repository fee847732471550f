"""Sphinx configuration: the docs are Markdown (MyST), built strictly in CI.

uv run sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

project = "django-tasks-fs"
author = "django-tasks-fs developers"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "conf.py"]
html_theme = "furo"
html_title = "django-tasks-fs"
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# Links to files outside docs/ (benchmark scripts, READMEs) point at the repository.
suppress_warnings: list[str] = []
