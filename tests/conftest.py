"""Fixtures shared by the outcap tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from helpers import PipeFactory


@pytest.fixture
def pipes() -> Iterator[PipeFactory]:
    """A factory of pipes: ``read_end, write_end = pipes()``; ``pipes.close(fd)`` closes one end."""
    factory = PipeFactory()
    yield factory
    factory.close_all()
