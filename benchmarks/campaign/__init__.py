"""The reliability campaign's scenarios; ``benchmarks/chaos.py`` runs them.

Each module has ``run(args) -> dict`` (the figures, one JSON line) and may have
``add_arguments(parser)`` for options of its own.
"""
