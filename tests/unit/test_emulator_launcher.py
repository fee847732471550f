"""Finding the official emulator, and failing clearly when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from django_tasks_fs.emulators import firestore as launcher


def test_explicit_jar_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(
        launcher.EmulatorNotFound, match="gcloud components install cloud-firestore-emulator"
    ):
        launcher.find_emulator_jar()


def test_explicit_jar_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jar = tmp_path / "cloud-firestore-emulator.jar"
    jar.write_bytes(b"")
    monkeypatch.setenv("FIRESTORE_EMULATOR_JAR", str(jar))
    assert launcher.find_emulator_jar() == jar


def test_no_sdk_anywhere_gives_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_JAR", raising=False)
    monkeypatch.setattr(launcher, "_sdk_root_from_gcloud", lambda: None)
    monkeypatch.setattr(launcher, "KNOWN_SDK_ROOTS", (str(tmp_path),))
    with pytest.raises(launcher.EmulatorNotFound) as info:
        launcher.find_emulator_jar()
    assert "apt-get install google-cloud-cli-firestore-emulator" in str(info.value)
    assert "Java" in str(info.value)


def test_the_installed_sdk_is_found() -> None:
    jar = launcher.find_emulator_jar()
    assert jar.name == "cloud-firestore-emulator.jar"
    assert jar.is_file()
