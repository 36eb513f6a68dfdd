"""The folders chosen at start: results on persistent storage when there is some, and a cache of the
app's own beside them unless the operator named one."""

from __future__ import annotations

from pathlib import Path

from webapp.folders import output_folder, place_folders
from webapp.settings import AppSettings


def test_output_dir_uses_persistent_storage_when_present_and_writable(tmp_path):
    data = tmp_path / "data"
    assert output_folder("custom", data, tmp_path / "outputs") == Path("custom")
    assert output_folder(None, data, tmp_path / "outputs") == tmp_path / "outputs"  # no /data
    data.mkdir()
    assert output_folder(None, data, tmp_path / "outputs") == data / "outputs"
    assert (data / "outputs").is_dir() and not list((data / "outputs").iterdir())


def test_output_dir_falls_back_when_persistent_storage_is_not_writable(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "outputs").write_text("a file where the folder would go")
    assert output_folder("", data, "outputs") == Path("outputs")


def test_parsing_leaves_both_folders_to_the_start():
    settings = AppSettings.from_mapping({})
    assert (settings.output_dir, settings.cache_dir, settings.owns_cache) == (None, None, False)


def test_without_gradio_temp_dir_the_app_caches_in_a_folder_of_its_own(tmp_path):
    settings = place_folders(AppSettings.from_mapping({"JUHE_OUTPUT_DIR": str(tmp_path / "o")}))
    assert settings.output_dir == tmp_path / "o"
    assert (settings.cache_dir, settings.owns_cache) == (tmp_path / "gradio-cache", True)
    assert not settings.cache_dir.exists()  # Gradio makes it when it first caches a file


def test_a_space_with_storage_keeps_results_and_cache_on_it(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    settings = place_folders(AppSettings.from_mapping({}), data_dir=data)
    assert (settings.output_dir, settings.cache_dir) == (data / "outputs", data / "gradio-cache")


def test_a_named_cache_is_used_and_never_the_apps_own(tmp_path):
    env = {"JUHE_OUTPUT_DIR": str(tmp_path / "o"), "GRADIO_TEMP_DIR": str(tmp_path / "shared")}
    settings = place_folders(AppSettings.from_mapping(env))
    assert (settings.cache_dir, settings.owns_cache) == (tmp_path / "shared", False)
