"""Anchor systems for the drain-throughput benchmark (see README.md)."""

from __future__ import annotations
