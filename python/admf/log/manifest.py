"""The run manifest: what a run was (id, when, which engine, config, seed, library versions).

``manifest.json`` is written once, atomically (temp file, fsync, rename, fsync of the
directory), when the log is created. ``config_hash`` is the SHA-256 of the config as canonical
JSON (sorted keys, no spaces), so two runs with the same config have the same hash. ``digest``
is the SHA-256 of every other field (seed, created_at, libraries included) as canonical JSON;
the log's shape record holds it too, so an edited manifest is refused even if its digest was
recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

from admf.errors import AdmfError
from admf.log.segment import write_atomically

MANIFEST_NAME: Final[str] = "manifest.json"
MANIFEST_FORMAT: Final[str] = "admf-log"
RUN_ID_PATTERN: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_LIBRARIES: Final[tuple[str, ...]] = ("numpy", "pyarrow", "duckdb")


class ManifestError(AdmfError, ValueError):
    """A manifest that is missing a field, malformed, or does not match its digest."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise AdmfError(
            f"invalid run id {run_id!r}: expected 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return run_id


def new_run_id() -> str:
    """A run id that sorts by creation time: ``YYYYmmddTHHMMSSZ-<8 hex>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{os.urandom(4).hex()}"


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("admf", *_LIBRARIES):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


@dataclass(frozen=True)
class Manifest:
    """The manifest of one run."""

    run_id: str
    created_at: str
    engine_version: str
    config: dict[str, Any]
    config_hash: str
    seed: int | None
    libraries: dict[str, str]
    format_version: int = 2

    @property
    def digest(self) -> str:
        """The SHA-256 of every field as canonical JSON."""
        return hashlib.sha256(canonical_json(self.to_json()).encode()).hexdigest()

    @classmethod
    def new(cls, run_id: str, config: dict[str, Any] | None, seed: int | None) -> Manifest:
        config = dict(config or {})
        try:
            digest = config_hash(config)
        except (TypeError, ValueError) as exc:
            raise AdmfError(f"the run config must be JSON-serializable: {exc}") from exc
        libraries = _library_versions()
        return cls(
            run_id=check_run_id(run_id),
            created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            engine_version=libraries["admf"],
            config=config,
            config_hash=digest,
            seed=seed,
            libraries=libraries,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": self.format_version,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "engine_version": self.engine_version,
            "config": self.config,
            "config_hash": self.config_hash,
            "seed": self.seed,
            "libraries": self.libraries,
        }

    def write(self, run_dir: Path) -> None:
        """Writes ``manifest.json`` atomically into ``run_dir``."""
        text = json.dumps({**self.to_json(), "digest": self.digest}, indent=2, sort_keys=True)
        write_atomically(run_dir / MANIFEST_NAME, text.encode() + b"\n")

    @classmethod
    def read(cls, run_dir: Path) -> Manifest:
        path = run_dir / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise AdmfError(f"{run_dir} is not an admf log: no {MANIFEST_NAME}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{path}: not an admf log manifest")
        try:
            manifest = cls(
                run_id=str(raw["run_id"]),
                created_at=str(raw["created_at"]),
                engine_version=str(raw["engine_version"]),
                config=dict(raw["config"]),
                config_hash=str(raw["config_hash"]),
                seed=None if raw["seed"] is None else int(raw["seed"]),
                libraries={str(k): str(v) for k, v in dict(raw["libraries"]).items()},
                format_version=int(raw["format_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{path}: manifest field missing or malformed: {exc}") from None
        try:
            created = datetime.fromisoformat(manifest.created_at)
        except ValueError:
            created = None
        if created is None or created.tzinfo is None:
            raise ManifestError(
                f"{path}: created_at {manifest.created_at!r} is not an ISO 8601 timestamp "
                "with a time zone"
            )
        if config_hash(manifest.config) != manifest.config_hash:
            raise ManifestError(f"{path}: config_hash does not match the config")
        if raw.get("digest") != manifest.digest:
            raise ManifestError(
                f"{path}: digest does not match the manifest's fields (edited after the run "
                "was created?)"
            )
        return manifest
