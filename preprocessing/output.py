"""The output directory's lifecycle: staging area, the atomic commit, cleanup after failure.

A dataset becomes visible only when metadata.json appears, written last (temporary
name, then rename) after every shard was moved in; a failed or killed run leaves only
its staging area, which the next run of the same output removes. All file access goes
through Beam's FileSystems, so local paths and gs:// behave the same.
"""

from __future__ import annotations

import logging
import os
import uuid

from apache_beam.io.filesystems import FileSystems

from contract.manifest import MANIFEST_NAME
from preprocessing.errors import OutputError

log = logging.getLogger(__name__)
STAGING_PREFIX = ".seqscale-staging-"


def staging_dir(output: str, run_id: str) -> str:
    return FileSystems.join(output, f"{STAGING_PREFIX}{run_id}")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _exists(path: str) -> bool:
    return FileSystems.exists(path)


def _list(pattern: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - a missing directory matches nothing
        return []


def prepare_output(output: str, *, overwrite: bool, run_id: str, marker: str = MANIFEST_NAME) -> str:
    """Refuse an existing dataset unless --overwrite; prove the location is writable.

    Returns the staging directory of this run. The old dataset (if any) stays valid
    until the commit step replaces it.
    """
    if _exists(FileSystems.join(output, marker)) and not overwrite:
        raise OutputError(
            f"{output} already holds {'a dataset' if marker == MANIFEST_NAME else 'an output'} ({marker}); "
            "pass --overwrite to replace it or choose another --output"
        )
    leftovers = [p for p in _list(FileSystems.join(output, "*")) if not p.rstrip("/").endswith(marker)]
    if leftovers and not overwrite:
        raise OutputError(
            f"{output} is not empty ({len(leftovers)} files, e.g. {leftovers[0]}); pass --overwrite to replace "
            "its contents or choose an empty --output"
        )
    staging = staging_dir(output, run_id)
    probe = FileSystems.join(staging, "probe")
    try:
        with FileSystems.create(probe) as f:
            f.write(b"ok")
        FileSystems.delete([probe])
    except Exception as e:  # noqa: BLE001 - any storage error means the same to the user
        raise OutputError(f"cannot write to {output} ({e}); check the path and your permissions") from e
    return staging


def commit(output: str, staging: str, moves: list[tuple[str, str]], manifest_json: str, *,
           marker: str = MANIFEST_NAME) -> None:
    """Move finished shards into `output`, remove an old dataset, write metadata.json last.

    `moves` are (staged path, final file name) pairs; `marker` is the file written last
    (metadata.json for a dataset, predictions.json for seqscale-predict's output).

    Readers see the old dataset, no dataset (no metadata.json), or the new one: the old
    manifest is deleted before anything of the old dataset is touched, and the new one
    is written (to a temporary name, then renamed) after every shard is in place.
    """
    old_manifest = FileSystems.join(output, marker)
    if _exists(old_manifest):
        FileSystems.delete([old_manifest])
    src = [staged for staged, _ in moves]
    dst = [FileSystems.join(output, name) for _, name in moves]
    keep = set(dst)
    stale = [
        p
        for p in _list(FileSystems.join(output, "*"))
        if p not in keep and not p.rstrip("/").split("/")[-1].startswith(STAGING_PREFIX)
    ]
    stale_staging = [p for p in staging_areas(output) if p.rstrip("/") != staging.rstrip("/")]
    if stale:
        FileSystems.delete(stale)
    if src:
        FileSystems.rename(src, dst)
    tmp = FileSystems.join(output, f".{marker}.tmp")
    with FileSystems.create(tmp, mime_type="application/json") as f:
        f.write(manifest_json.encode())
    FileSystems.rename([tmp], [old_manifest])
    _delete_tree(staging)
    for p in stale_staging:
        _delete_tree(p)


def staging_areas(output: str) -> list[str]:
    """Staging directories in `output`, including empty ones left by killed runs."""
    if "://" not in output:
        if not os.path.isdir(output):
            return []
        return sorted(os.path.join(output, n) for n in os.listdir(output) if n.startswith(STAGING_PREFIX))
    marker = STAGING_PREFIX
    return sorted({p[: p.index(marker)] + p[p.index(marker):].split("/")[0]
                   for p in _list(FileSystems.join(output, marker + "*", "**"))})


def absent(output: str) -> bool:
    """Whether `output` does not exist yet (a local directory; on object stores, no object under it)."""
    if "://" not in output:
        return not os.path.exists(output)
    return not _list(FileSystems.join(output, "**"))


def remove_if_empty(output: str) -> None:
    """Remove a local output directory this run created, when it holds nothing (object stores have no
    empty directories)."""
    if "://" not in output and os.path.isdir(output) and not os.listdir(output):
        os.rmdir(output)


def discard(staging: str) -> None:
    """Remove a failed run's staging area (best effort; it never holds a manifest)."""
    _delete_tree(staging)


def _delete_tree(path: str) -> None:
    files = _list(FileSystems.join(path, "**"))
    try:
        if files:
            FileSystems.delete(files)
        if _exists(path):
            FileSystems.delete([path])
    except Exception as e:  # noqa: BLE001 - leftover scratch is harmless, but say so
        log.warning("could not remove scratch %s: %s", path, e)
