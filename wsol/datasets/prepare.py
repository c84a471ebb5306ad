"""Unpack the archives users download into the layouts wsol reads, and verify them.

- ``prepare_cub``: ``CUB_200_2011.tgz`` -> ``OUT/CUB_200_2011`` (the ``cub`` adapter's root).
- ``prepare_imagenet``: ``ILSVRC2012_img_val.tar`` + ``ILSVRC2012_bbox_val_v3.tgz``
  (+ ``ILSVRC2012_devkit_t12.tar.gz``) -> ``OUT/val/*.JPEG, *.xml`` (+ ``OUT/ILSVRC2012_devkit_t12``),
  or the Kaggle ``imagenet-object-localization-challenge.zip`` -> its val part, as laid out in
  the zip. ``OUT`` is then the ``imagenet`` adapter's root.

Archives are read as streams (one pass, progress in bytes of the archive). A wrong,
truncated or corrupt archive raises a one-line DataError naming it; files are written as
``name.part`` and renamed when complete, so a failed run leaves no half-written file.
"""
from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import tarfile
import zipfile
import zlib
from typing import Callable, List, Optional

from tqdm import tqdm

from wsol.datasets.base import require_file
from wsol.errors import DataError
from wsol.utils.io import atomic_write

CUB_DIR = "CUB_200_2011"
DEVKIT_DIR = "ILSVRC2012_devkit_t12"
KAGGLE_VAL_PARTS = ("LOC_val_solution.csv", "LOC_synset_mapping.txt", "ILSVRC/Data/CLS-LOC/val/",
                    "ILSVRC/Annotations/CLS-LOC/val/")


class _Counting:
    """A read-only file wrapper that reports bytes read to a tqdm bar."""

    def __init__(self, f, bar):
        self.f, self.bar = f, bar

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.bar.update(len(data))
        return data


def _clean(name: str) -> Optional[str]:
    """A member name as a safe relative posix path, or None (absolute, '..', empty)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    norm = posixpath.normpath(name)
    if norm in (".", "") or norm == ".." or norm.startswith("../"):
        return None
    return norm


def _archive_error(archive: str, e: BaseException, started: bool = True) -> DataError:
    """The one-line error for a failed read; ``started``: some members were read already."""
    text = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    if isinstance(e, tarfile.TarError) and not started:
        return DataError(f"not a readable tar archive ({text})", path=archive)
    if isinstance(e, EOFError) or "unexpected end" in text or "truncated" in text.lower():
        return DataError(f"truncated archive ({text}); download it again", path=archive)
    if isinstance(e, zipfile.BadZipFile):
        return DataError(f"not a readable zip archive or corrupt ({text})", path=archive)
    if isinstance(e, (zlib.error, gzip.BadGzipFile)):
        return DataError(f"corrupt compressed data ({text}); download it again", path=archive)
    return DataError(f"not a readable tar archive ({text})", path=archive)


def _write(src, target: str) -> None:
    with atomic_write(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _extract_tar(archive: str, out_dir: str, mapper: Callable[[str], Optional[str]], desc: str,
                 progress: bool = True) -> tuple:
    """Stream ``archive`` and write each regular member ``m`` to ``out_dir/mapper(m)`` (None: skip).

    Returns (written relative paths, first few member names seen).
    """
    require_file(archive, "archive")
    written: List[str] = []
    seen: List[str] = []
    size = os.path.getsize(archive)
    with open(archive, "rb") as raw, tqdm(total=size, desc=desc, unit="B", unit_scale=True,
                                           disable=not progress) as bar:
        try:
            with tarfile.open(fileobj=_Counting(raw, bar), mode="r|*") as tf:
                for m in tf:
                    if len(seen) < 5:
                        seen.append(m.name)
                    if not m.isfile():
                        continue
                    name = _clean(m.name)
                    rel = mapper(name) if name is not None else None
                    if rel is None:
                        continue
                    src = tf.extractfile(m)
                    _write(src, os.path.join(out_dir, rel))
                    written.append(rel)
        except (EOFError, tarfile.TarError, zlib.error, gzip.BadGzipFile) as e:
            raise _archive_error(archive, e, started=bool(seen)) from None
        except OSError as e:
            if e.errno is None:  # lzma/bz2 corrupt data
                raise _archive_error(archive, e) from None
            raise DataError(f"cannot write ({e.strerror})", path=e.filename or out_dir) from None
    return written, seen


# ----------------------------------------------------------------------------- CUB

def prepare_cub(archive: str, out_dir: str, progress: bool = True) -> str:
    """Unpack ``CUB_200_2011.tgz`` into ``out_dir`` and verify it; returns the cub root.

    Every file the ``cub`` adapter reads must be there and every image images.txt lists.
    """
    from wsol.datasets.cub import CUB_FILES, read_cub

    written, seen = _extract_tar(archive, out_dir, lambda n: n, "CUB_200_2011", progress)
    root = os.path.join(out_dir, CUB_DIR)
    lacking = [f for f in CUB_FILES if f"{CUB_DIR}/{f}" not in set(written)
               and not os.path.isfile(os.path.join(root, f))]
    if lacking:
        raise DataError(f"not CUB_200_2011.tgz or incomplete: no {CUB_DIR}/{lacking[0]} "
                        f"(first members: {', '.join(seen) or 'none'})", path=archive)
    ds = read_cub(root, "all")
    missing = [s.image_id for s in ds.samples if not os.path.isfile(s.path)]
    if missing:
        raise DataError(f"truncated or incomplete archive: {len(missing)} of {len(ds)} images listed in "
                        f"images.txt are missing (e.g. {missing[0]})", path=archive)
    return root


# ----------------------------------------------------------------------------- ImageNet

def _val_image(name: str) -> Optional[str]:
    base = posixpath.basename(name)
    return f"val/{base}" if base.lower().endswith((".jpeg", ".jpg")) else None


def _val_xml(name: str) -> Optional[str]:
    base = posixpath.basename(name)
    return f"val/{base}" if base.lower().endswith(".xml") else None


def _devkit_member(name: str) -> Optional[str]:
    parts = name.split("/", 1)
    return f"{DEVKIT_DIR}/{parts[1]}" if len(parts) == 2 else None


def _extract_kaggle(archive: str, out_dir: str, progress: bool) -> None:
    require_file(archive, "archive")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            sol = next((i for i in infos if i.filename.endswith("LOC_val_solution.csv")), None)
            if sol is None:
                first = ", ".join(i.filename for i in infos[:5]) or "none"
                raise DataError("not the Kaggle imagenet-object-localization-challenge.zip: no "
                                f"LOC_val_solution.csv (first members: {first})", path=archive)
            prefix = sol.filename[: -len("LOC_val_solution.csv")]
            chosen = []
            for i in infos:
                if i.is_dir() or not i.filename.startswith(prefix):
                    continue
                rel = _clean(i.filename[len(prefix):])
                if rel is not None and any(rel == p or (p.endswith("/") and rel.startswith(p))
                                           for p in KAGGLE_VAL_PARTS):
                    chosen.append((i, rel))
            with tqdm(total=sum(i.file_size for i, _ in chosen), desc="kaggle val", unit="B", unit_scale=True,
                      disable=not progress) as bar:
                for info, rel in chosen:
                    with zf.open(info) as src:
                        _write(_Counting(src, bar), os.path.join(out_dir, rel))
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise _archive_error(archive, e) from None
    except OSError as e:
        if e.errno is None:
            raise _archive_error(archive, e) from None
        raise DataError(f"cannot write ({e.strerror})", path=e.filename or out_dir) from None


def prepare_imagenet(out_dir: str, val_tar: Optional[str] = None, bbox_tar: Optional[str] = None,
                     devkit_tar: Optional[str] = None, kaggle_zip: Optional[str] = None,
                     progress: bool = True) -> str:
    """Unpack ILSVRC2012 val archives into ``out_dir`` and verify them; returns the imagenet root.

    Either the official archives (``val_tar`` images, ``bbox_tar`` XMLs, optional
    ``devkit_tar``) or ``kaggle_zip`` (only its val part is unpacked). Archives may be given
    over several runs (e.g. the devkit later); after each run the folder must read as a
    complete ImageNet val layout: every annotated image present, every image annotated, and
    as many images as the devkit's ground truth lists.
    """
    from wsol.datasets.imagenet import find_devkit, read_imagenet

    if kaggle_zip and (val_tar or bbox_tar):
        raise DataError("give either the Kaggle zip or the official val/bbox archives, not both", path=kaggle_zip)
    if not (kaggle_zip or val_tar or bbox_tar or devkit_tar):
        raise DataError("nothing to prepare: give val_tar and bbox_tar (+ devkit_tar), or kaggle_zip")
    os.makedirs(out_dir, exist_ok=True)
    blame = kaggle_zip or val_tar or bbox_tar or devkit_tar
    if val_tar:
        written, seen = _extract_tar(val_tar, out_dir, _val_image, "val images", progress)
        if not written:
            raise DataError("not ILSVRC2012_img_val.tar: no .JPEG members "
                            f"(first members: {', '.join(seen) or 'none'})", path=val_tar)
    if bbox_tar:
        written, seen = _extract_tar(bbox_tar, out_dir, _val_xml, "val boxes", progress)
        if not written:
            raise DataError("not ILSVRC2012_bbox_val_v3.tgz: no .xml members "
                            f"(first members: {', '.join(seen) or 'none'})", path=bbox_tar)
    if devkit_tar:
        written, seen = _extract_tar(devkit_tar, out_dir, _devkit_member, "devkit", progress)
        for need in ("meta.mat", "ILSVRC2012_validation_ground_truth.txt"):
            if f"{DEVKIT_DIR}/data/{need}" not in written:
                raise DataError(f"not ILSVRC2012_devkit_t12.tar.gz: no data/{need} "
                                f"(first members: {', '.join(seen) or 'none'})", path=devkit_tar)
    if kaggle_zip:
        _extract_kaggle(kaggle_zip, out_dir, progress)

    layout = "kaggle" if kaggle_zip else ("tar" if (val_tar or bbox_tar) else None)
    try:
        ds = read_imagenet(out_dir, "val", layout=layout)
    except DataError as e:
        raise DataError(f"unpacked, but the folder does not read as ImageNet val: {e}", path=blame) from None
    missing = [s.image_id for s in ds.samples if not os.path.isfile(s.path)]
    if missing:
        raise DataError(f"truncated or incomplete archive: {len(missing)} of {len(ds)} annotated images are "
                        f"missing (e.g. {missing[0]})", path=val_tar or blame)
    unannotated = [i for i in ds.issues if i.kind == "unannotated_image"]
    if unannotated:
        raise DataError(f"truncated or incomplete annotations: {len(unannotated)} images have no XML "
                        f"(e.g. {unannotated[0].image_id})", path=bbox_tar or blame)
    dk = find_devkit(out_dir)
    if dk is not None and dk.has_ground_truth and len(dk.ground_truth()) != len(ds):
        raise DataError(f"{len(ds)} val images unpacked but the devkit ground truth lists "
                        f"{len(dk.ground_truth())}: truncated archive?", path=val_tar or blame)
    return out_dir
