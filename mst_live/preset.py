"""Preset files: the low-rank style Gram and mean feature, each bin's log-magnitude mean and
spread, and everything needed to check they fit the network.

A preset is untrusted input. It is an .npz read with pickling disabled, and every key,
dtype, shape and value is checked before use; any problem is a PresetError naming the file.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import MstError, ParameterError, PresetError
from .losses import StyleTarget
from .settings import Settings

# 2 added bin_mean and bin_std (the engine's first stage needs them), 3 the palette, 4 its frames'
# ages, 5 the style's mean feature, 6 the network's kind in the settings (structured or dense), 7
# the palette frames' levels in their notes
FORMAT_VERSION = 7
# a version-2 preset has no palette: the style knob's strong end reshapes only; a version-3 palette
# has no ages: its frames are matched on pitch alone; before version 5 there is no mean feature:
# the optimiser matches the uncentred Gram alone, not the style's covariance beside it; before
# version 6 every preset was built on the dense network, and runs on it; before version 7 the
# palette's frames take the level played in each note, not the style's
READABLE_VERSIONS = (2, 3, 4, 5, 6, 7)
MAX_UNPACKED_BYTES = 512 << 20

# key -> (dtype kind, ndim); shapes are checked against the settings below.
_SCHEMA = {
    "format_version": ("i", 0),
    "settings_json": ("U", 0),
    "weights_checksum": ("U", 0),
    "basis": ("f2", 2),
    "eigenvalues": ("f4", 1),
    "gram_sq_norm": ("f8", 0),
    "energy_kept": ("f8", 0),
    "n_frames": ("i", 0),
    "bin_mean": ("f4", 1),
    "bin_std": ("f4", 1),
    "source_names": ("U", 1),
    "source_sha256": ("U", 1),
    "palette": ("u1", 2),
    "palette_age": ("u1", 1),
    "palette_level": ("u1", 1),
    "feature_mean": ("f4", 1),
}
_OPTIONAL = {"palette", "palette_age", "palette_level", "feature_mean"}

SHIPPED_DIRS = (
    Path(os.environ.get("MST_LIVE_PRESETS", "")) if os.environ.get("MST_LIVE_PRESETS") else None,
    Path(__file__).resolve().parent.parent / "presets",
)


@dataclass
class Preset:
    """A style: top eigenvectors (float16) and eigenvalues of its feature Gram, its mean feature,
    the mean and spread over time of each bin's log-magnitude, and provenance."""

    settings: Settings
    weights_checksum: str
    basis: np.ndarray
    eigenvalues: np.ndarray
    gram_sq_norm: float
    energy_kept: float
    n_frames: int
    bin_mean: np.ndarray
    bin_std: np.ndarray
    sources: list[tuple[str, str]] = field(default_factory=list)
    path: Path | None = None
    palette: np.ndarray | None = None  # uint8 (bins, n): the style's own frames (mst_live/palette.py)
    palette_age: np.ndarray | None = None  # uint8 (n,): each palette frame's frames since its note's onset
    palette_level: np.ndarray | None = None  # uint8 (n,): each palette frame's half-dB steps under its note's loudest
    feature_mean: np.ndarray | None = None  # float32 (n_filters,): the style's mean feature, for its covariance
    format_version: int = FORMAT_VERSION  # as read from its file; saving writes the current one

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def excerpt_path(self) -> Path | None:
        """A short excerpt of the style audio shipped beside the preset (NAME.excerpt.ogg), if any."""
        if self.path is None:
            return None
        p = self.path.with_name(f"{self.path.stem}.excerpt.ogg")
        return p if p.exists() else None

    @property
    def name(self) -> str:
        return self.path.stem if self.path else "preset"

    def style_target(self, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> StyleTarget:
        basis = torch.from_numpy(self.basis.astype(np.float32))
        eig = torch.from_numpy(self.eigenvalues.astype(np.float32))
        mean = None if self.feature_mean is None else torch.from_numpy(self.feature_mean.astype(np.float32))
        return StyleTarget.from_eig(basis, eig, self.gram_sq_norm, mean=mean).to(device, dtype)

    def check_network(self, settings: Settings, checksum: str) -> None:
        """Refuse to drive a network other than the one this preset was built with."""
        where = self.path or "preset"
        if settings.network != self.settings.network:
            raise PresetError(f"{where}: built on the {self.settings.network} network, but the network given is "
                              f"{settings.network}")
        if settings != self.settings:
            raise PresetError(f"{where}: built for {self.settings.describe()}, but the network is {settings.describe()}")
        if checksum != self.weights_checksum:
            raise PresetError(
                f"{where}: weight checksum {self.weights_checksum} does not match this network's {checksum}"
            )

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        if p.suffix != ".npz":
            raise ParameterError(f"preset output {p} must end in .npz")
        if p.parent and not p.parent.exists():
            raise PresetError(f"{p}: folder {p.parent} does not exist")
        names = [n for n, _ in self.sources]
        hashes = [h for _, h in self.sources]
        arrays = {
            "format_version": np.int64(FORMAT_VERSION),
            "settings_json": np.str_(json.dumps(self.settings.to_dict(), sort_keys=True)),
            "weights_checksum": np.str_(self.weights_checksum),
            "basis": self.basis.astype(np.float16),
            "eigenvalues": self.eigenvalues.astype(np.float32),
            "gram_sq_norm": np.float64(self.gram_sq_norm),
            "energy_kept": np.float64(self.energy_kept),
            "n_frames": np.int64(self.n_frames),
            "bin_mean": self.bin_mean.astype(np.float32),
            "bin_std": self.bin_std.astype(np.float32),
            "source_names": np.array(names, dtype=str) if names else np.zeros(0, dtype="<U1"),
            "source_sha256": np.array(hashes, dtype=str) if hashes else np.zeros(0, dtype="<U1"),
        }
        if self.feature_mean is not None:
            arrays["feature_mean"] = np.ascontiguousarray(self.feature_mean, dtype=np.float32)
        if self.palette is not None:
            arrays["palette"] = np.ascontiguousarray(self.palette, dtype=np.uint8)
        if self.palette is not None and self.palette_age is not None:
            arrays["palette_age"] = np.ascontiguousarray(self.palette_age, dtype=np.uint8)
        if self.palette is not None and self.palette_level is not None:
            arrays["palette_level"] = np.ascontiguousarray(self.palette_level, dtype=np.uint8)
        tmp = p.with_name(p.name + ".part.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, p)
        self.path, self.format_version = p, FORMAT_VERSION
        return p

    def describe(self) -> str:
        """Everything in the file, readably."""
        size = self.path.stat().st_size if self.path and self.path.exists() else 0
        lines = [
            f"preset        {self.path or '(unsaved)'}",
            f"format        version {self.format_version}, {size / 1024:.0f} KiB on disk",
            f"settings      {self.settings.describe()}",
            f"weights       checksum {self.weights_checksum}",
            f"style Gram    rank {self.rank} of {self.settings.n_filters}, keeps {100 * self.energy_kept:.4f} % "
            f"of its energy, ||G||^2 = {self.gram_sq_norm:.6g}",
            f"top eigenvalues {', '.join(f'{v:.4g}' for v in self.eigenvalues[:5])}",
            (f"mean feature  norm {float(np.linalg.norm(self.feature_mean)):.4g}: the optimiser matches the "
             "style's covariance beside its Gram" if self.feature_mean is not None else
             "mean feature  none: the optimiser matches the uncentred Gram alone (rebuild for the covariance)"),
            f"bins          log-magnitude mean {float(self.bin_mean.mean()):.3g} and spread "
            f"{float(self.bin_std.mean()):.3g} on average over {self.bin_mean.size} bins",
            f"built from    {self.n_frames} feature frames "
            f"({self.n_frames * self.settings.hop_length / self.settings.sample_rate:.1f} s) in "
            f"{len(self.sources)} file(s):",
        ]
        lines += [f"  {name}  sha256 {digest}" for name, digest in self.sources]
        if self.palette_age is None:
            ages = ", matched on pitch alone (no ages)"
        elif self.palette_level is None:
            ages = ", each with its age in its note"
        else:
            ages = ", each with its age and level in its note"
        lines.append(f"palette       {self.palette.shape[1]} frames of the style's own sound{ages}" if self.palette is not None
                     else "palette       none: above style weight 1 this preset reshapes only (rebuild it for the "
                          "style's own sound)")
        return "\n".join(lines)


def _scalar(arrays: dict[str, np.ndarray], key: str) -> object:
    return arrays[key].item()


def _check_array(where: str, key: str, arr: object) -> None:
    if not isinstance(arr, np.ndarray):
        raise PresetError(f"{where}: '{key}' is not a numpy array")
    kind, ndim = _SCHEMA[key]
    if kind == "i":
        ok = arr.dtype.kind == "i"
    elif kind == "U":
        ok = arr.dtype.kind == "U"
    else:
        ok = arr.dtype == np.dtype(kind)
    if not ok:
        raise PresetError(f"{where}: '{key}' has dtype {arr.dtype}, expected {kind}")
    if arr.ndim != ndim:
        raise PresetError(f"{where}: '{key}' has shape {arr.shape}, expected {ndim} dimension(s)")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise PresetError(f"{where}: '{key}' contains NaN or infinite values")


def _old_version(where: str, version: int, name: str) -> PresetError:
    return PresetError(f"{where}: format version {version}, this mst-live reads versions "
                       f"{' and '.join(map(str, READABLE_VERSIONS))}; rebuild it "
                       f"from its style tracks with `mst-live preset build TRACKS... --output {name}`")


def load_preset(path: str | os.PathLike) -> Preset:
    """Load and validate a preset file without ever unpickling anything."""
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise PresetError(f"{where}: no such preset file")
    if p.is_dir():
        raise PresetError(f"{where}: is a folder, not a preset file")
    if not zipfile.is_zipfile(p):
        raise PresetError(f"{where}: not a preset (.npz archive)")
    try:
        with zipfile.ZipFile(p) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
            members = {i.filename for i in zf.infolist()}
        if unpacked > MAX_UNPACKED_BYTES:
            raise PresetError(f"{where}: unpacks to {unpacked >> 20} MiB, more than any preset needs")
        arrays: dict[str, np.ndarray] = {}
        with np.load(p, allow_pickle=False) as npz:
            for key in _SCHEMA:
                if key + ".npy" in members:
                    arrays[key] = npz[key]
        # another format version names itself before any complaint about its keys
        version = arrays.get("format_version")
        if version is not None and version.dtype.kind == "i" and version.ndim == 0 and int(version) not in READABLE_VERSIONS:
            raise _old_version(where, int(version), p.name)
        expected = {k + ".npy" for k in _SCHEMA}
        missing = sorted(k[:-4] for k in expected - members if k[:-4] not in _OPTIONAL)
        unknown = sorted(members - expected)
        if missing:
            raise PresetError(f"{where}: missing key(s) {', '.join(missing)}")
        if unknown:
            raise PresetError(f"{where}: unexpected entries {', '.join(unknown)}")
    except MstError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise PresetError(f"{where}: contains pickled objects, refused") from None
        raise PresetError(f"{where}: damaged or not a preset ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise PresetError(f"{where}: damaged or truncated ({type(exc).__name__}: {exc})") from None

    for key, arr in arrays.items():
        _check_array(where, key, arr)
    try:
        stored = json.loads(str(_scalar(arrays, "settings_json")))
        if int(_scalar(arrays, "format_version")) < 6 and isinstance(stored, dict):
            stored.setdefault("network", "dense")
        settings = Settings.from_dict(stored)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{where}: settings are not valid JSON ({exc})") from None
    except ParameterError as exc:
        raise PresetError(f"{where}: bad settings: {exc}") from None

    basis, eig = arrays["basis"], arrays["eigenvalues"]
    rank = eig.shape[0]
    if not (1 <= rank <= settings.n_filters) or basis.shape != (settings.n_filters, rank):
        raise PresetError(
            f"{where}: basis has shape {basis.shape} and {rank} eigenvalues; expected ({settings.n_filters}, r), "
            f"1 <= r <= {settings.n_filters}"
        )
    if np.any(eig < 0):
        raise PresetError(f"{where}: negative eigenvalues in a Gram matrix")
    sq_norm = float(_scalar(arrays, "gram_sq_norm"))
    energy = float(_scalar(arrays, "energy_kept"))
    if sq_norm <= 0:
        raise PresetError(f"{where}: gram_sq_norm={sq_norm} must be positive")
    if not (0 < energy <= 1.0 + 1e-6):
        raise PresetError(f"{where}: energy_kept={energy} is not a fraction")
    checksum = str(_scalar(arrays, "weights_checksum"))
    if len(checksum) != 16 or any(c not in "0123456789abcdef" for c in checksum):
        raise PresetError(f"{where}: weights_checksum {checksum!r} is not a 16-digit hex checksum")
    names, hashes = arrays["source_names"], arrays["source_sha256"]
    if names.shape != hashes.shape:
        raise PresetError(f"{where}: {names.size} source names but {hashes.size} checksums")
    n_frames = int(_scalar(arrays, "n_frames"))
    if n_frames < 1:
        raise PresetError(f"{where}: n_frames={n_frames} must be positive")
    # statistics of non-negative values: each bin's log1p magnitude, and the rectified features
    for key, size, of in (("bin_mean", settings.n_bins, "log1p magnitude"), ("bin_std", settings.n_bins, "log1p magnitude"),
                          ("feature_mean", settings.n_filters, "rectified feature")):
        if key not in arrays:
            continue
        if arrays[key].shape != (size,):
            raise PresetError(f"{where}: {key} has shape {arrays[key].shape}, expected ({size},)")
        if np.any(arrays[key] < 0):
            raise PresetError(f"{where}: {key} is negative, which no {of} can be")
    palette = arrays.get("palette")
    if palette is not None and (palette.shape[0] != settings.n_bins or not 1 <= palette.shape[1] <= 65536):
        raise PresetError(f"{where}: palette has shape {palette.shape}, expected ({settings.n_bins}, 1 to 65536 frames)")
    ages, levels = arrays.get("palette_age"), arrays.get("palette_level")
    for key, per_frame in (("palette_age", ages), ("palette_level", levels)):
        if per_frame is not None and palette is None:
            raise PresetError(f"{where}: {key} without a palette")
        if per_frame is not None and per_frame.shape != (palette.shape[1],):
            raise PresetError(f"{where}: {key} has shape {per_frame.shape}, expected one value per palette frame "
                              f"({palette.shape[1]},)")
    return Preset(
        settings=settings,
        weights_checksum=checksum,
        basis=basis,
        eigenvalues=eig,
        gram_sq_norm=sq_norm,
        energy_kept=energy,
        n_frames=n_frames,
        bin_mean=arrays["bin_mean"],
        bin_std=arrays["bin_std"],
        sources=[(str(a), str(b)) for a, b in zip(names.tolist(), hashes.tolist(), strict=True)],
        path=p,
        palette=palette,
        palette_age=ages,
        palette_level=levels,
        feature_mean=arrays.get("feature_mean"),
        format_version=int(_scalar(arrays, "format_version")),
    )


def resolve_preset_path(name: str | os.PathLike) -> Path:
    """A path as given, or the shipped preset of that name (``jazz`` -> presets/jazz.npz)."""
    p = Path(name)
    if p.exists() or p.suffix == ".npz" or len(p.parts) > 1:
        return p
    for d in SHIPPED_DIRS:
        if d is not None and (d / f"{p.name}.npz").exists():
            return d / f"{p.name}.npz"
    shipped = sorted({q.stem for d in SHIPPED_DIRS if d is not None and d.is_dir() for q in d.glob("*.npz")})
    raise PresetError(f"{name}: no such preset file or shipped preset (shipped: {', '.join(shipped) or 'none'})")
