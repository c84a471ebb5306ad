"""One registry helper for everything wsol looks up by name (datasets, backbones, CAM
methods, training methods): docs/architecture.md, Registries.

Entries register themselves when their module is imported; a registry imports its plugin
modules on first use. A plugin that fails to import is logged once and kept in
:meth:`Registry.failures`, and an unknown-name error mentions it, so a broken module never
just vanishes from the listings.
"""
from __future__ import annotations

import fnmatch
import importlib
import logging
from typing import Callable, Dict, Generic, Iterator, List, Optional, Sequence, Tuple, TypeVar

from wsol.errors import UnknownNameError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, with lazy plugin imports.

    kind: what the entries are, for messages ('dataset', 'backbone', 'method').
    plugins: modules whose import registers entries, imported once on first lookup.
    """

    def __init__(self, kind: str, plugins: Sequence[str] = ()):
        self.kind = kind
        self.plugins = tuple(plugins)
        self._entries: Dict[str, T] = {}
        self._failures: Dict[str, str] = {}
        self._loaded = False

    # ------------------------------------------------------------ registration
    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` (a later registration replaces an earlier one)."""
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> Optional[T]:
        """Unregister ``name`` (tests that register temporary entries); returns the entry."""
        return self._entries.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("cam")``."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    # ------------------------------------------------------------ plugins
    def load(self) -> None:
        """Import the plugin modules once; failures are logged and remembered, not raised."""
        if self._loaded:
            return
        self._loaded = True
        for mod in self.plugins:
            try:
                importlib.import_module(mod)
            except Exception as e:  # a broken plugin must not take the others down
                msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
                self._failures[mod] = msg
                log.warning("%s plugin %s failed to import (%s); its entries are unavailable",
                            self.kind, mod, msg)

    def failures(self) -> Dict[str, str]:
        """Plugin modules that failed to import -> one-line reason."""
        self.load()
        return dict(self._failures)

    # ------------------------------------------------------------ lookup
    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def find(self, name: str) -> Optional[T]:
        """The entry of ``name``, or None."""
        self.load()
        return self._entries.get(name)

    def get(self, name: str, extra_known: Sequence[str] = ()) -> T:
        """The entry of ``name``; an unknown name raises a one-line :class:`UnknownNameError`
        with the closest names (``extra_known`` widens the list of candidates)."""
        entry = self.find(name)
        if entry is None:
            raise self.unknown(name, extra_known)
        return entry

    def unknown(self, name: str, extra_known: Sequence[str] = ()) -> UnknownNameError:
        """The error for an unknown ``name`` (mentions plugins that failed to import)."""
        err = UnknownNameError(self.kind, name, list(self._entries) + list(extra_known))
        if self._failures:
            broken = "; ".join(f"{m}: {r}" for m, r in sorted(self._failures.items()))
            err.args = (f"{err.args[0]} (plugins that failed to import: {broken})",)
        return err

    def names(self, pattern: str = "*") -> List[str]:
        """Registered names matching the fnmatch ``pattern``, sorted."""
        self.load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def items(self, pattern: str = "*") -> List[Tuple[str, T]]:
        """(name, entry) pairs matching ``pattern``, sorted by name."""
        return [(n, self._entries[n]) for n in self.names(pattern)]
