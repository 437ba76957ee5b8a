"""A small checked registry: name -> entry, filled once by ``register``, looked up with a clear error.

Every extensible part of obliviate is one (methods, their families, attacks, metrics, model kinds): the entry is
registered in the file that defines it, a name can be registered only once, and an unknown name is a one-line
error that lists the known ones.
"""
from __future__ import annotations

import re
from typing import Generic, TypeVar

from obliviate.core.utils import ObliviateError

T = TypeVar("T")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Registry(dict, Generic[T]):
    """A ``dict`` of name -> entry (iteration in registration order) that checks what is registered."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name``; a malformed or taken name is a programming error (``ValueError``)."""
        if not NAME.match(name):
            raise ValueError(f"{self.kind} name {name!r}: lower case letters, digits and _ only")
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry under ``name``, or a user-facing error naming the known ones."""
        if name not in self:
            raise ObliviateError(f"unknown {self.kind} {name!r}; expected one of {', '.join(sorted(self))}")
        return self[name]
