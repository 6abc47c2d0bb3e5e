"""Metric, parameter and checkpoint files: atomic writes and loading that never runs code from a file.

.out / .params: pickles of plain Python and numpy objects only. Readers use a restricted unpickler that
admits builtins containers, numpy arrays and the few classes the paper code's own files contain
(types.SimpleNamespace configs, jax arrays, which are rebuilt here as numpy arrays without jax).
Checkpoints: an .npz of the run state's leaves plus JSON metadata and a SHA-256 of all of it, loaded with
allow_pickle=False and verified; writing one keeps the one before it (`<name>.prev.npz`) for a fallback.
"""
import builtins
import dataclasses
import hashlib
import io
import json
import os
import pickle
import tempfile
import types
import zipfile

import numpy as np


class FileFormatError(ValueError):
    """A file that is missing, unreadable, corrupt, or not of the expected kind; the message names it."""


def atomic_write(path: str, write, previous: str | None = None) -> None:
    """Write through `write(fileobj)` into a temporary file beside `path`, fsync, then rename over `path`; with
    `previous`, the file `path` held is first renamed to `previous` (so a kill leaves the new file, or the old
    one at `previous`, never a partial one). The new file gets the permissions umask allows, as open() would."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600
        if previous is not None and os.path.exists(path):
            os.replace(path, previous)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def save_pickle(path: str, obj) -> None:
    atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))


def _rebuild_jax_array(fun, args, array_state, aval_state):
    """Stand-in for jax's array reconstructor: the same numpy array, without jax."""
    if fun is not _NUMPY_RECONSTRUCT:
        raise _RefusedGlobal("unexpected array constructor in a jax array record")
    array = fun(*args)
    array.__setstate__(array_state)
    return array


def _numpy_reconstructors():
    core = getattr(np, "_core", None) or np.core
    return core.multiarray._reconstruct, core.multiarray.scalar, core.numeric._frombuffer


_NUMPY_RECONSTRUCT, _NUMPY_SCALAR, _NUMPY_FROMBUFFER = _numpy_reconstructors()

# (module, name) -> the object a pickle may refer to; nothing else is ever imported or called.
_ALLOWED_GLOBALS = {
    **{(module, "_reconstruct"): _NUMPY_RECONSTRUCT
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _NUMPY_SCALAR for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _NUMPY_FROMBUFFER for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("types", "SimpleNamespace"): types.SimpleNamespace,
    ("jax._src.array", "_reconstruct_array"): _rebuild_jax_array,
    **{("builtins", name): getattr(builtins, name)
       for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes")},
}


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "numpy.dtypes" and name.endswith("DType"):
            return getattr(np.dtypes, name)  # dtype classes of numpy >= 1.25 pickles
        raise _RefusedGlobal(f"refusing to load {module}.{name} (only plain data is allowed)")


def _to_plain(obj):
    """SimpleNamespace -> dict, recursively; everything else as it is."""
    if isinstance(obj, types.SimpleNamespace):
        return {k: _to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return obj


def load_pickle(path: str):
    """Safely load a seedsuite or paper-code pickle; SimpleNamespace configs come back as dicts."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileFormatError(f"file '{path}' not found") from None
    except OSError as e:
        raise FileFormatError(f"cannot read '{path}': {e}") from None
    try:
        return _to_plain(_RestrictedUnpickler(io.BytesIO(data)).load())
    except _RefusedGlobal as e:
        raise FileFormatError(f"'{path}' is not a safe metrics/params file: {e}") from None
    except Exception as e:  # truncated or garbage bytes surface as many different exceptions
        raise FileFormatError(f"'{path}' is corrupt or not a pickle ({type(e).__name__}: {e})") from None


OUT_FORMAT = 2  # the .out's meta "format": 2 adds 'diverged' and 'diverged_step'; files without it (ours before,
# the paper code's) read as format 1


def load_metrics(path: str) -> dict:
    """Load an .out file (ours or the paper code's) as {'config', 'metrics', 'meta'} with numpy metrics, plus
    'grid' (a sweep's points), 'episodes' (flat per-episode arrays), 'target_reached_step' and 'diverged_step'
    (per run, the eval time at which it diverged, -1 if it did not) where the file has them."""
    data = load_pickle(path)
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise FileFormatError(f"'{path}' is not a metrics (.out) file: it has no 'metrics' dictionary")
    metrics = {}
    for name, value in data["metrics"].items():
        try:
            metrics[name] = np.asarray(value if not isinstance(value, list) else [np.asarray(v) for v in value])
        except ValueError as e:
            raise FileFormatError(f"'{path}': metric '{name}' is not a regular array ({e})") from None
    meta = data.get("meta", {})
    if not isinstance(meta, dict) or not isinstance(data.get("config", {}), dict):
        raise FileFormatError(f"'{path}' is not a metrics (.out) file: its 'meta' or 'config' is not a dictionary")
    version = meta.get("format", 1)
    if not isinstance(version, int) or version > OUT_FORMAT:
        raise FileFormatError(f"'{path}' was written by a newer seedsuite (.out format {version!r}; this version reads "
                              f"formats up to {OUT_FORMAT}): update seedsuite to read it")
    result = {"config": data.get("config", {}), "metrics": metrics, "meta": meta}
    if data.get("grid") is not None:
        grid = data["grid"]
        if not isinstance(grid, list) or not all(isinstance(point, dict) for point in grid):
            raise FileFormatError(f"'{path}': 'grid' must be a list of points (dicts of swept values)")
        result["grid"] = grid
    if isinstance(data.get("episodes"), dict):
        result["episodes"] = {name: np.asarray(values) for name, values in data["episodes"].items()}
    for name in ("target_reached_step", "diverged_step"):
        if data.get(name) is not None:
            result[name] = np.asarray(data[name])
    return result


def run_complete(output: str) -> bool:
    """Whether `output`.out exists and records a finished run (commands that drive many runs skip those)."""
    if not os.path.exists(output + ".out"):
        return False
    try:
        return bool(load_metrics(output + ".out")["meta"].get("complete"))
    except FileFormatError:
        return False


# --- checkpoints -----------------------------------------------------------------------------------

def previous_checkpoint(path: str) -> str:
    """Where the checkpoint written before the one at `path` is kept: run.ckpt.npz -> run.ckpt.prev.npz."""
    return path[:-len(".npz")] + ".prev.npz" if path.endswith(".npz") else path + ".prev"


def _digest(payload: dict) -> str:
    """SHA-256 over every entry's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(payload):
        a = np.ascontiguousarray(payload[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --- checkpoints ----------------------------------------------------------------------------------------------
# A large leaf that fills row by row along its first axis after the runs (an agent's episode buffers, a replay
# buffer before it wraps) goes to a row log instead of the .npz: segment files of rows [start, end), written once
# each (atomically, named by their SHA-256) and listed with their digests in the checkpoint's metadata; the constant
# tail not yet written (zeros, NaN) is recorded as its fill value. A later checkpoint verifies the segments it reuses
# against the rows it holds and writes only the new ones, so the bytes written over a run grow with its data, not
# with the number of checkpoints times the buffers' size. Segments neither checkpoint (latest, previous) lists are
# deleted.
ROW_LOG_MIN_BYTES = 1 << 20  # smaller leaves stay in the .npz


def row_log_dir(path: str) -> str:
    """run.ckpt.npz (and the one kept before it, run.ckpt.prev.npz) -> run.ckpt.rows: the row-log segments."""
    base = path[:-len(".npz")] if path.endswith(".npz") else path
    return (base[:-len(".prev")] if base.endswith(".prev") else base) + ".rows"


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _filled_rows(leaf: np.ndarray):
    """(rows before the constant tail along axis 1, the tail's value)."""
    fill = leaf[:, -1].reshape(-1)[0]
    equal = leaf == fill
    if leaf.dtype.kind == "f" and np.isnan(fill):
        equal = np.isnan(leaf)
    constant = equal.reshape(leaf.shape[0], leaf.shape[1], -1).all(axis=(0, 2))
    tail = np.argmax(~constant[::-1]) if not constant.all() else len(constant)
    return leaf.shape[1] - int(tail), fill.item()


def _manifest_of(path: str) -> dict:
    """The row log the checkpoint at `path` lists ({} when there is none or it is unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(npz["meta_json"].tobytes().decode()).get("row_log", {})
    except Exception:  # a missing or damaged checkpoint lists nothing to reuse or keep
        return {}


def _log_rows(path: str, index: int, leaf: np.ndarray, previous: dict) -> dict:
    """The row-log entry of one leaf: reuse `previous`'s segments whose rows are unchanged, write the rest."""
    filled, fill = _filled_rows(leaf)
    segments = []
    for start, end, name, digest in previous.get("segments", []) if previous.get("shape") == list(leaf.shape) else []:
        if end > filled or _sha256(leaf[:, start:end]) != digest:
            segments = []  # rows already logged changed (a ring buffer wrapped): log the leaf afresh
            break
        segments.append([start, end, name, digest])
    start = segments[-1][1] if segments else 0
    if filled > start:
        rows = np.ascontiguousarray(leaf[:, start:filled])
        digest = _sha256(rows)
        name = f"leaf{index:05d}_{start}_{filled}_{digest[:16]}.npy"
        target = os.path.join(row_log_dir(path), name)
        if not os.path.exists(target):
            atomic_write(target, lambda f: np.save(f, rows, allow_pickle=False))
        segments.append([start, filled, name, digest])
    return {"shape": list(leaf.shape), "dtype": leaf.dtype.str, "fill": fill, "segments": segments}


def _prune_row_log(path: str, keep: list[dict]) -> None:
    directory = row_log_dir(path)
    if not os.path.isdir(directory):
        return
    referenced = {segment[2] for log in keep for entry in log.values() for segment in entry["segments"]}
    for name in os.listdir(directory):
        if name not in referenced:
            os.remove(os.path.join(directory, name))


def save_checkpoint(path: str, leaves: list, arrays: dict, meta: dict) -> None:
    """leaves: the run state's flattened leaves; arrays: named host arrays (metrics); meta: JSON-able. The file
    at `path` before this one is kept at previous_checkpoint(path); large row-filled leaves go to the row log."""
    previous_log, row_log, payload = _manifest_of(path), {}, {}
    for i, leaf in enumerate(leaves):
        leaf = np.asarray(leaf)
        if leaf.nbytes >= ROW_LOG_MIN_BYTES and leaf.ndim >= 2 and leaf.shape[1] >= 2:
            row_log[str(i)] = _log_rows(path, i, leaf, previous_log.get(str(i), {}))
            leaf = np.zeros((0,), leaf.dtype)  # the rows are in the log
        payload[f"leaf_{i:05d}"] = leaf
    payload.update({f"array_{name}": np.asarray(value) for name, value in arrays.items()})
    payload["meta_json"] = np.frombuffer(json.dumps({**meta, "row_log": row_log}).encode(), dtype=np.uint8)
    payload["sha256"] = np.frombuffer(_digest(payload).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload), previous=previous_checkpoint(path))
    _prune_row_log(path, [row_log, previous_log])


def remove_checkpoint(path: str) -> None:
    """The checkpoint at `path`, the one kept before it and their row log."""
    for name in (path, previous_checkpoint(path)):
        if os.path.exists(name):
            os.remove(name)
    directory = row_log_dir(path)
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)


def _rows_from_log(path: str, entry: dict) -> np.ndarray:
    leaf = np.full(entry["shape"], entry["fill"], dtype=np.dtype(entry["dtype"]))
    for start, end, name, digest in entry["segments"]:
        segment = os.path.join(row_log_dir(path), name)
        try:
            rows = np.load(segment, allow_pickle=False)
        except FileNotFoundError:
            raise FileFormatError(f"checkpoint '{path}': its row-log segment '{segment}' is missing") from None
        if rows.shape != (entry["shape"][0], end - start) + tuple(entry["shape"][2:]) or _sha256(rows) != digest:
            raise FileFormatError(f"checkpoint '{path}': its row-log segment '{segment}' fails its checksum")
        leaf[:, start:end] = rows
    return leaf


def load_checkpoint(path: str):
    """Return (leaves, arrays, meta); FileFormatError if the file is missing, corrupt or fails its checksum."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            payload = {name: npz[name] for name in npz.files}
        if "meta_json" not in payload:
            raise FileFormatError(f"checkpoint '{path}' has no metadata; it is not a seedsuite checkpoint")
        stored = payload.pop("sha256", None)
        if stored is None:
            raise FileFormatError(f"checkpoint '{path}' has no checksum (written by an older seedsuite)")
        if stored.tobytes().decode() != _digest(payload):
            raise FileFormatError(f"checkpoint '{path}' fails its checksum: its contents changed after writing")
        meta = json.loads(payload["meta_json"].tobytes().decode())
        leaves = [payload[n] for n in sorted(n for n in payload if n.startswith("leaf_"))]
        for index, entry in meta.get("row_log", {}).items():
            leaves[int(index)] = _rows_from_log(path, entry)
        arrays = {n[len("array_"):]: payload[n] for n in payload if n.startswith("array_")}
    except FileNotFoundError:
        raise FileFormatError(f"checkpoint '{path}' not found") from None
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeDecodeError) as e:
        raise FileFormatError(f"checkpoint '{path}' is corrupt or unreadable ({type(e).__name__}: {e})") from None
    return leaves, arrays, meta


@dataclasses.dataclass
class Outputs:
    """A run's files, named from its --output prefix: the metrics, the parameters, the checkpoint, the one kept
    before it and the checkpoint's row log."""
    prefix: str

    @property
    def out(self):
        return self.prefix + ".out"

    @property
    def params(self):
        return self.prefix + ".params"

    @property
    def checkpoint(self):
        return self.prefix + ".ckpt.npz"

    @property
    def previous_checkpoint(self):
        return previous_checkpoint(self.checkpoint)

    def existing(self):
        return [p for p in (self.out, self.params, self.checkpoint, self.previous_checkpoint,
                            row_log_dir(self.checkpoint)) if os.path.exists(p)]
