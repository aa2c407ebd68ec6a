"""Plugin discovery with fake installed distributions: ``*.dist-info`` folders on sys.path
(as flake8's tests do), real importlib.metadata, no mocks."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from admf import plugins
from admf.cli import main
from admf.errors import AdmfError
from admf.plugins import PluginLoadError, PluginNotFound, list_plugins, load


def _dist(root: Path, name: str, version: str, entry_points: str) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points), encoding="utf-8")


FAKE_MODULES = ("admf_fake_good", "admf_fake_broken", "admf_fake_adapter")


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Three fake distributions: a good strategy, a strategy whose module fails to import,
    and an adapter whose entry names a missing attribute."""
    monkeypatch.delenv(plugins.DISABLE_AUTOLOAD_ENV, raising=False)
    (tmp_path / "admf_fake_good.py").write_text(
        "class Good:\n    greeting = 'hello'\n", encoding="utf-8"
    )
    (tmp_path / "admf_fake_broken.py").write_text(
        "import admf_no_such_module_anywhere\n", encoding="utf-8"
    )
    (tmp_path / "admf_fake_adapter.py").write_text("class Other:\n    pass\n", encoding="utf-8")
    _dist(
        tmp_path,
        "admf-fake-good",
        "1.2.3",
        """
        [admf.strategies]
        fake-good = admf_fake_good:Good
        [console_scripts]
        unrelated = admf_fake_good:Good
        """,
    )
    _dist(
        tmp_path,
        "admf-fake-broken",
        "0.0.1",
        """
        [admf.strategies]
        fake-broken = admf_fake_broken:Strategy
        """,
    )
    _dist(
        tmp_path,
        "admf-fake-adapter",
        "2.0",
        """
        [admf.adapters]
        fake-adapter = admf_fake_adapter:Missing
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)


@pytest.mark.usefixtures("fake_plugins")
def test_load_by_entry_point_name() -> None:
    cls = load("strategies", "fake-good")
    assert cls.__name__ == "Good"  # type: ignore[attr-defined]
    assert load("admf.strategies", "fake-good") is cls


@pytest.mark.usefixtures("fake_plugins")
def test_a_broken_plugin_does_not_break_loading_another() -> None:
    load("strategies", "fake-good")
    assert "admf_fake_broken" not in sys.modules


@pytest.mark.usefixtures("fake_plugins")
def test_load_error_names_group_entry_distribution_target_and_cause() -> None:
    with pytest.raises(PluginLoadError) as info:
        load("strategies", "fake-broken")
    err = info.value
    message = str(err)
    for part in (
        "'fake-broken'",
        "'admf.strategies'",
        "admf-fake-broken 0.0.1",
        "'admf_fake_broken:Strategy'",
        "ModuleNotFoundError",
        "admf_no_such_module_anywhere",
    ):
        assert part in message
    assert isinstance(err.__cause__, ModuleNotFoundError)
    assert (err.group, err.name, err.distribution, err.version, err.target) == (
        "admf.strategies",
        "fake-broken",
        "admf-fake-broken",
        "0.0.1",
        "admf_fake_broken:Strategy",
    )
    assert isinstance(err, AdmfError)


@pytest.mark.usefixtures("fake_plugins")
def test_missing_attribute_is_a_load_error() -> None:
    with pytest.raises(PluginLoadError, match=r"AttributeError.*Missing"):
        load("adapters", "fake-adapter")


@pytest.mark.usefixtures("fake_plugins")
def test_unknown_name_lists_the_names_that_exist() -> None:
    with pytest.raises(PluginNotFound) as info:
        load("strategies", "nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "fake-good" in message
    assert "fake-broken" in message
    assert "fake-adapter" not in message  # another group


def test_unknown_group() -> None:
    with pytest.raises(AdmfError, match=r"unknown plugin group 'indicators'.*strategies"):
        load("indicators", "x")


@pytest.mark.usefixtures("fake_plugins")
def test_module_class_paths() -> None:
    assert load("strategies", "admf_fake_good:Good").greeting == "hello"  # type: ignore[attr-defined]
    assert load("strategies", "admf.errors:AdmfError") is AdmfError
    assert load("adapters", "admf.plugins:PluginInfo.ok") is plugins.PluginInfo.ok
    with pytest.raises(PluginLoadError, match=r"not from an entry point.*ModuleNotFoundError"):
        load("strategies", "admf_missing_module:Thing")
    with pytest.raises(AdmfError, match="expected module:attribute"):
        load("strategies", "admf.errors:")


@pytest.mark.usefixtures("fake_plugins")
def test_list_plugins_collects_errors_without_raising() -> None:
    found = {p.name: p for p in list_plugins() if p.name.startswith("fake-")}
    assert sorted(found) == ["fake-adapter", "fake-broken", "fake-good"]
    good = found["fake-good"]
    assert (good.kind, good.group, good.distribution, good.version, good.target) == (
        "strategies",
        "admf.strategies",
        "admf-fake-good",
        "1.2.3",
        "admf_fake_good:Good",
    )
    assert good.ok
    assert found["fake-broken"].error is not None
    assert found["fake-broken"].error.startswith("ModuleNotFoundError")
    assert found["fake-adapter"].kind == "adapters"
    assert not found["fake-adapter"].ok
    only = [p.name for p in list_plugins("adapters") if p.name.startswith("fake-")]
    assert only == ["fake-adapter"]
    # deterministic order: groups in table order, names sorted
    names = [(p.group, p.name) for p in list_plugins()]
    assert names == sorted(
        names, key=lambda x: (list(plugins.ENTRY_POINT_GROUPS.values()).index(x[0]), x[1])
    )


@pytest.mark.usefixtures("fake_plugins")
def test_disable_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "1")
    assert plugins.autoload_disabled()
    with pytest.raises(PluginNotFound, match="ADMF_DISABLE_PLUGIN_AUTOLOAD"):
        load("strategies", "fake-good")
    assert list_plugins() == []
    # explicit paths still work
    assert load("strategies", "admf_fake_good:Good").greeting == "hello"  # type: ignore[attr-defined]
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "0")
    assert not plugins.autoload_disabled()


@pytest.mark.usefixtures("fake_plugins")
def test_cli_plugins_list(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    for part in (
        "admf.strategies",
        "fake-good",
        "admf-fake-good",
        "1.2.3",
        "admf_fake_good:Good",
        "ok",
        "fake-broken",
        "ModuleNotFoundError",
        "admf.adapters",
        "failed to load",
    ):
        assert part in out
    assert main(["plugins", "list", "--group", "adapters"]) == 0
    out = capsys.readouterr().out
    assert "fake-adapter" in out
    assert "fake-good" not in out
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "1")
    assert main(["plugins", "list"]) == 0
    assert "disabled" in capsys.readouterr().out
