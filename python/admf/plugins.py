"""Plugin discovery: strategies and adapters from Python entry points or ``module:Class`` paths.

A plugin is any installed distribution that declares an entry point in one of the groups of
``ENTRY_POINT_GROUPS`` (the one table of groups; add new groups here), for example in its
``pyproject.toml``::

    [project.entry-points."admf.strategies"]
    sma-cross = "admf_sma_cross:SmaCross"

How plugins are found and loaded:

- ``load(group, name)`` imports only the entry point asked for, so a broken plugin that was not
  asked for never breaks a run. A name with a colon (``package.module:Class``) is imported
  directly, without entry points.
- An unknown name raises ``PluginNotFound``, listing the names that exist. A plugin that fails
  to import raises ``PluginLoadError`` naming the group, the entry, the distribution and its
  version, the target and the original exception (chained as ``__cause__``).
- ``list_plugins()`` loads every entry point of every group and reports each one's load error
  instead of raising, for ``admf plugins list``.
- ``ADMF_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry-point discovery off (as pytest's
  ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``); explicit ``module:Class`` paths still load.

Entry points are always visited sorted by (name, distribution), so listings are deterministic.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Final

from admf.errors import AdmfError

ENTRY_POINT_GROUPS: Final[dict[str, str]] = {
    "strategies": "admf.strategies",
    "adapters": "admf.adapters",
}
"""Plugin kinds and their entry-point groups, in the order listings show them."""

DISABLE_AUTOLOAD_ENV: Final[str] = "ADMF_DISABLE_PLUGIN_AUTOLOAD"
"""Set to a true value (``1``, ``true``, ``yes``) to turn entry-point discovery off."""

_FALSE_VALUES: Final[frozenset[str]] = frozenset({"", "0", "false", "no", "off"})


class PluginNotFound(AdmfError):
    """No plugin of that name in that group."""


class PluginLoadError(AdmfError):
    """A plugin was found but importing it failed. The original exception is ``__cause__``."""

    def __init__(
        self,
        group: str,
        name: str,
        target: str,
        distribution: str | None,
        version: str | None,
        cause: BaseException,
    ) -> None:
        self.group = group
        self.name = name
        self.target = target
        self.distribution = distribution
        self.version = version
        self.cause = cause
        origin = (
            f" from distribution {distribution} {version}"
            if distribution is not None
            else " (not from an entry point)"
        )
        super().__init__(
            f"cannot load plugin {name!r} in group {group!r}{origin}, target {target!r}: "
            f"{type(cause).__name__}: {cause}"
        )


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One entry point as ``admf plugins list`` shows it."""

    kind: str
    """The key in ``ENTRY_POINT_GROUPS`` (``strategies``, ``adapters``)."""
    group: str
    """The entry-point group (``admf.strategies``)."""
    name: str
    distribution: str | None
    version: str | None
    target: str
    """The entry point's value, ``module:attribute``."""
    error: str | None
    """``None`` when the plugin loads, else the exception's type and message."""

    @property
    def ok(self) -> bool:
        return self.error is None


def autoload_disabled() -> bool:
    """True when ``ADMF_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value."""
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in _FALSE_VALUES


def entry_point_group(group: str) -> str:
    """The entry-point group for a plugin kind (``strategies``) or a group name
    (``admf.strategies``); an ``AdmfError`` listing the known ones otherwise."""
    if group in ENTRY_POINT_GROUPS:
        return ENTRY_POINT_GROUPS[group]
    if group in ENTRY_POINT_GROUPS.values():
        return group
    known = ", ".join(f"{k} ({v})" for k, v in ENTRY_POINT_GROUPS.items())
    raise AdmfError(f"unknown plugin group {group!r}; expected one of {known}")


def _distribution(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = ep.dist
    if dist is None:
        return None, None
    return dist.name, dist.version


def _sorted_entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: (ep.name, _distribution(ep)[0] or ""))


def _import_target(target: str) -> object:
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def load(group: str, name: str) -> object:
    """The object a plugin names: the entry point ``name`` of ``group``, or, when ``name``
    contains a colon, the ``module:attribute`` it spells.

    Raises ``PluginNotFound`` (listing the names that exist) or ``PluginLoadError``.
    """
    ep_group = entry_point_group(group)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if not module_name or not attr:
            raise AdmfError(f"bad plugin path {name!r}; expected module:attribute")
        try:
            return _import_target(name)
        except Exception as exc:
            raise PluginLoadError(ep_group, name, name, None, None, exc) from exc

    if autoload_disabled():
        raise PluginNotFound(
            f"no plugin {name!r} in group {ep_group!r}: entry-point discovery is turned off "
            f"by {DISABLE_AUTOLOAD_ENV}; name the plugin as module:Class instead"
        )
    found = [ep for ep in _sorted_entry_points(ep_group) if ep.name == name]
    if not found:
        names = sorted({ep.name for ep in entry_points(group=ep_group)})
        available = ", ".join(names) if names else "none are installed"
        raise PluginNotFound(
            f"no plugin {name!r} in group {ep_group!r}; available: {available} "
            "(or name one as module:Class)"
        )
    if len(found) > 1:
        dists = ", ".join(f"{d} {v}" for d, v in map(_distribution, found))
        raise AdmfError(
            f"plugin {name!r} in group {ep_group!r} is declared by several distributions "
            f"({dists}); uninstall all but one or name it as module:Class"
        )
    ep = found[0]
    try:
        return ep.load()
    except Exception as exc:
        dist, version = _distribution(ep)
        raise PluginLoadError(ep_group, name, ep.value, dist, version, exc) from exc


def list_plugins(group: str | None = None) -> list[PluginInfo]:
    """Every entry point of every group (or of one), each loaded to report whether it works.
    Never raises for a broken plugin: its error is in ``PluginInfo.error``. Empty when
    autoload is disabled."""
    if autoload_disabled():
        return []
    kinds = (
        list(ENTRY_POINT_GROUPS.items())
        if group is None
        else [(k, v) for k, v in ENTRY_POINT_GROUPS.items() if v == entry_point_group(group)]
    )
    out: list[PluginInfo] = []
    for kind, ep_group in kinds:
        for ep in _sorted_entry_points(ep_group):
            dist, version = _distribution(ep)
            error: str | None = None
            try:
                ep.load()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            out.append(PluginInfo(kind, ep_group, ep.name, dist, version, ep.value, error))
    return out
