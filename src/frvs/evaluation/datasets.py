"""Evaluation data sets: labelled pairs for 1:1, labelled image trees for 1:N.

Readers validate as they read and name the file and line of any problem. Group labels
(for per-group figures) come only from the evaluator's files; FRVS never infers them.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from frvs.core.errors import InvalidInputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
_TRUE = frozenset({"1", "true", "yes", "same"})
_FALSE = frozenset({"0", "false", "no", "different"})


@dataclass(frozen=True, slots=True)
class Pair:
    """Two images and whether they show the same person; ``group`` is the evaluator's label."""

    a: Path
    b: Path
    same: bool
    group: str | None = None


@dataclass(frozen=True, slots=True)
class PairSet:
    """The pairs of one file, in file order."""

    source: Path
    kind: str
    pairs: tuple[Pair, ...]

    def __post_init__(self) -> None:
        if not self.pairs:
            raise InvalidInputError(f"{self.source}: no pairs")

    @property
    def images(self) -> list[Path]:
        """Each distinct image once, in first-use order (templates are made once each)."""
        return list(dict.fromkeys(p for pair in self.pairs for p in (pair.a, pair.b)))

    @property
    def genuine(self) -> int:
        return sum(p.same for p in self.pairs)

    @property
    def impostor(self) -> int:
        return len(self.pairs) - self.genuine

    @property
    def has_groups(self) -> bool:
        return any(p.group is not None for p in self.pairs)


def load_pairs(path: Path, image_root: Path | None = None) -> PairSet:
    """A pairs CSV (``image_a,image_b,same[,group]``) or an LFW ``pairs.txt``."""
    if not path.is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    if path.suffix.lower() == ".txt":
        return load_lfw_pairs(path, image_root or path.parent)
    return load_pairs_csv(path, image_root)


def _same(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidInputError(f"{where}: 'same' must be 1 or 0, got {value!r}")


def load_pairs_csv(path: Path, image_root: Path | None = None) -> PairSet:
    """Pairs from a CSV; image paths are relative to ``image_root`` (default: the CSV's
    folder). Extra columns are allowed; a ``group`` column labels each pair."""
    root = image_root or path.parent
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"image_a", "image_b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidInputError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                                    f"expected image_a,image_b,same[,group]")
        pairs = []
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if not row["image_a"] or not row["image_b"]:
                raise InvalidInputError(f"{where}: empty image path")
            group = (row.get("group") or "").strip() or None
            pairs.append(Pair(root / row["image_a"].strip(), root / row["image_b"].strip(),
                              _same(row["same"] or "", where), group))
    return PairSet(path, "csv", tuple(pairs))


def _lfw_image(root: Path, name: str, number: str, where: str) -> Path:
    if not number.isdigit():
        raise InvalidInputError(f"{where}: image number must be an integer, got {number!r}")
    return root / name / f"{name}_{int(number):04d}.jpg"


def load_lfw_pairs(path: Path, image_root: Path) -> PairSet:
    """LFW's ``pairs.txt``: a header line, then ``name n1 n2`` (same person) or
    ``name1 n1 name2 n2`` (different people); images at ``root/name/name_000n.jpg``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = []
    for number, text in enumerate(lines[1:], start=2):
        fields = text.split()
        where = f"{path}:{number}"
        if not fields:
            continue
        if len(fields) == 3:
            name, n1, n2 = fields
            pairs.append(Pair(_lfw_image(image_root, name, n1, where),
                              _lfw_image(image_root, name, n2, where), True))
        elif len(fields) == 4:
            name1, n1, name2, n2 = fields
            pairs.append(Pair(_lfw_image(image_root, name1, n1, where),
                              _lfw_image(image_root, name2, n2, where), False))
        else:
            raise InvalidInputError(f"{where}: expected 3 or 4 fields, got {len(fields)}")
    return PairSet(path, "lfw", tuple(pairs))


# --- identification ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """An image and the people in it (a gallery image has exactly one)."""

    path: Path
    identities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An input left out of the figures, and why (reported, never silent)."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class IdentificationSet:
    """Gallery images (one person each), labelled probe images, and what was left out."""

    root: Path
    layout: str
    gallery: tuple[LabelledImage, ...]
    probes: tuple[LabelledImage, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def enrolled(self) -> list[str]:
        return sorted({g.identities[0] for g in self.gallery})


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _people(folder: Path) -> dict[str, list[Path]]:
    return {d.name: _images(d) for d in sorted(folder.iterdir()) if d.is_dir()}


def _tokens(text: str) -> list[str]:
    """Lower-case name tokens with trailing digits dropped: 'Alex_Lacamoire1' -> alex, lacamoire."""
    return [t for t in (re.sub(r"\d+$", "", w) for w in re.split(r"[^a-z0-9]+", text.lower())) if t]


def names_in_filename(stem: str, identities: Iterable[str]) -> tuple[str, ...]:
    """Enrolled people a file name names: a full name ('alex_lacamoire1') or a name token
    only one enrolled person has ('kit_with_rose' -> kit_harington, rose_leslie)."""
    words = _tokens(stem)
    known = {name: _tokens(name) for name in identities}
    owners: dict[str, set[str]] = {}
    for name, toks in known.items():
        for t in toks:
            owners.setdefault(t, set()).add(name)
    found = []
    for name, toks in known.items():
        n = len(toks)
        full = any(words[i:i + n] == toks for i in range(len(words) - n + 1))
        unique = any(len(owners[t]) == 1 and t in words for t in toks)
        if full or unique:
            found.append(name)
    return tuple(sorted(found))


def read_labels(path: Path) -> dict[Path, tuple[str, ...]]:
    """A labels CSV ``image,identity`` (one row per person in the image; paths relative
    to the CSV). A person not enrolled in the gallery makes a non-mated search."""
    labels: dict[Path, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"image", "identity"} <= set(reader.fieldnames or []):
            raise InvalidInputError(f"{path}: expected columns image,identity")
        for row in reader:
            image = (path.parent / row["image"].strip()).resolve()
            labels.setdefault(image, []).append(row["identity"].strip())
    return {k: tuple(sorted(set(v))) for k, v in labels.items()}


def _label_probes(
    files: list[Path], enrolled: list[str], labels: dict[Path, tuple[str, ...]] | None
) -> tuple[list[LabelledImage], list[Exclusion]]:
    probes, excluded = [], []
    for f in files:
        who = labels.get(f.resolve(), ()) if labels is not None else names_in_filename(
            f.stem, enrolled)
        if who:
            probes.append(LabelledImage(f, who))
        else:
            source = "the labels file" if labels is not None else "its file name"
            excluded.append(Exclusion(f, f"no label: {source} names nobody (give a labels CSV "
                                         "image,identity with --labels)"))
    return probes, excluded


def load_identities(
    root: Path, labels_csv: Path | None = None, seed: int = 0, unenrolled: float = 0.2
) -> IdentificationSet:
    """A labelled image tree, in one of three layouts:

    - ``gallery/<person>/`` and ``probe/<person>/``: explicit split;
    - ``train/<person>/`` (gallery) and ``test/`` (probes, flat or per person): flat probes
      are labelled by ``labels_csv`` (or ``test/labels.csv``), else by their file names;
    - ``<person>/`` folders only: split by ``seed`` — a share ``unenrolled`` of people are
      kept out of the gallery (their images become non-mated probes); of the rest, one
      image per person is enrolled and the others are probes.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"identification data not found: {root}")
    for gallery_dir, probe_dir in (("gallery", "probe"), ("train", "test")):
        if (root / gallery_dir).is_dir() and (root / probe_dir).is_dir():
            return _explicit(root, gallery_dir, probe_dir, labels_csv)
    return _split(root, seed, unenrolled)


def _explicit(root: Path, g_dir: str, p_dir: str, labels_csv: Path | None) -> IdentificationSet:
    gallery = [LabelledImage(p, (person,)) for person, files in _people(root / g_dir).items()
               for p in files]
    enrolled = sorted({g.identities[0] for g in gallery})
    probes = [LabelledImage(p, (person,)) for person, files in _people(root / p_dir).items()
              for p in files]
    flat = _images(root / p_dir)
    csv_path = labels_csv or (root / p_dir / "labels.csv")
    labels = read_labels(csv_path) if csv_path.is_file() else None
    if labels_csv is not None and labels is None:
        raise FileNotFoundError(f"labels file not found: {labels_csv}")
    flat_probes, excluded = _label_probes(flat, enrolled, labels)
    return IdentificationSet(root, f"{g_dir}/ + {p_dir}/", tuple(gallery),
                             tuple(probes + flat_probes), tuple(excluded))


def _split(root: Path, seed: int, unenrolled: float) -> IdentificationSet:
    rng = random.Random(seed)
    people = {k: v for k, v in _people(root).items() if v}
    if not people:
        raise InvalidInputError(f"{root}: no <person>/ folders with images")
    names = sorted(people)
    rng.shuffle(names)
    held_out = set(names[: round(len(names) * unenrolled)])
    gallery, probes = [], []
    for person in sorted(people):
        files = list(people[person])
        rng.shuffle(files)
        if person in held_out:
            probes += [LabelledImage(f, (person,)) for f in files]
        else:
            gallery.append(LabelledImage(files[0], (person,)))
            probes += [LabelledImage(f, (person,)) for f in files[1:]]
    return IdentificationSet(root, f"<person>/ split with seed {seed}", tuple(gallery),
                             tuple(probes), ())
