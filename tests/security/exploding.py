"""A module that raises (not ImportError) while it is imported."""

from __future__ import annotations

raise RuntimeError("this module refuses to be imported")
