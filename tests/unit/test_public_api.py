"""The public surface: ``django_tasks_fs.__all__``, docs/reference/api.md and the error tree agree."""

from __future__ import annotations

import inspect
import re
import textwrap

import django_tasks_fs
from django_tasks_fs import exceptions
from django_tasks_fs.store import errors as store_errors
from tests.conftest import REPO_ROOT

PAGE = (REPO_ROOT / "docs" / "reference" / "api.md").read_text()
IMPORT_BLOCK = re.compile(r"from django_tasks_fs import \((.*?)\n\)", re.S)
TREE_NAME = re.compile(r"^(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+)\b", re.M)


def documented_names() -> set[str]:
    (block,) = IMPORT_BLOCK.findall(PAGE)
    lines = (line.split("#")[0].strip().rstrip(",") for line in block.splitlines())
    return {line for line in lines if line}


def tree_names(text: str) -> list[str]:
    (tree,) = re.findall(r"```\n(TaskFsError.*?)```", text, re.S)
    return TREE_NAME.findall(tree)


def exception_classes(module: object) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == getattr(module, "__name__", "")
    }


def test_the_api_reference_lists_exactly_all() -> None:
    assert documented_names() == set(django_tasks_fs.__all__)


def test_every_exported_name_resolves() -> None:
    for name in django_tasks_fs.__all__:
        assert getattr(django_tasks_fs, name) is not None, name
    assert re.fullmatch(r"\d+\.\d+.*", django_tasks_fs.__version__)


def test_every_user_facing_exception_is_exported_and_in_both_trees() -> None:
    public = exception_classes(exceptions)
    assert public <= set(django_tasks_fs.__all__)
    assert sorted(tree_names(PAGE)) == sorted(public)
    drawn = textwrap.dedent((exceptions.__doc__ or "").split("::")[1].split("\n``")[0]).strip()
    assert sorted(tree_names(f"```\n{drawn}\n```")) == sorted(public)


def test_one_base_for_everything_a_user_can_catch() -> None:
    for name in exception_classes(exceptions) - {"TaskCancelledError", "TaskFsError"}:
        assert issubclass(getattr(exceptions, name), exceptions.TaskFsError), name
    # Like KeyboardInterrupt: ``except Exception`` in task code must not swallow it.
    assert not issubclass(exceptions.TaskCancelledError, Exception)


def test_the_stores_control_flow_stays_out_of_the_public_tree() -> None:
    for name in exception_classes(store_errors):
        assert not issubclass(getattr(store_errors, name), exceptions.TaskFsError), name
        assert name not in django_tasks_fs.__all__
        assert not hasattr(exceptions, name)


def test_moved_errors_keep_their_old_import_paths() -> None:
    from django_tasks_fs.gcp.errors import GoogleCloudError, MissingCloudResource
    from django_tasks_fs.results import TaskNotImportable
    from django_tasks_fs.store.executions import ContentionError

    assert ContentionError is exceptions.ContentionError
    assert TaskNotImportable is exceptions.TaskNotImportable
    assert GoogleCloudError is exceptions.GoogleCloudError
    assert MissingCloudResource is exceptions.MissingCloudResource
