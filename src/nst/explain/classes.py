"""The 1000 ImageNet classes of VGG's classifier, by index and by name (``class:tabby``)."""

from __future__ import annotations

import functools
import importlib.resources

from ..errors import ConfigError

COUNT = 1000


@functools.lru_cache(maxsize=1)
def table() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(synset, names) of every class, in the classifier's order."""
    path = importlib.resources.files("nst.explain") / "data" / "imagenet_classes.txt"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            synset, _, names = line.partition("\t")
            rows.append((synset, tuple(n.strip() for n in names.split(","))))
    return tuple(rows)


def name(index: int) -> str:
    """The class's first name (``tabby``)."""
    return table()[index][1][0]


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, (synset, names) in enumerate(table()):
        for n in (synset, *names):
            hits = out.setdefault(_key(n), [])
            if i not in hits:
                hits.append(i)
    return out


def lookup(text: str) -> int:
    """The index of the class called ``text`` (any of its names, case and ``_`` ignored)."""
    hits = _index().get(_key(text), [])
    if not hits:
        raise ConfigError(f"class: no ImageNet class is called '{text}' (use class:N, 0-999)")
    if len(hits) > 1:
        shown = " and ".join(f"{i} ({name(i)})" for i in hits)
        raise ConfigError(f"class: '{text}' names {shown}; use class:N")
    return hits[0]
