"""Minimal Django project for one anchor; run via manage.py in this folder."""

from __future__ import annotations
