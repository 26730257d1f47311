"""Stream iterators: chunks and text lines, sync and async."""

from __future__ import annotations

import asyncio
import codecs
import itertools
from typing import AsyncIterator, Dict, Iterable, Iterator, List, Optional

from . import _native
from ._native import Chunk

__all__ = ["Chunk", "StreamMethods"]

#: Maximum time an async iterator's helper thread waits before checking for
#: cancellation of the task that awaits it.
_ASYNC_WAIT_SLICE = 0.05


class _LineSplitter:
    """Turns one stream's chunks into complete lines, keeping each ``\\n``.

    Decoding is incremental, so a multi-byte character split across chunks
    decodes correctly; a partial line waits for the rest.
    """

    def __init__(self, encoding: str, errors: str) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors)
        self._partial: List[str] = []

    def feed(self, data: bytes, skipped: int = 0) -> List[str]:
        if skipped:
            # The rest of the pending line was overwritten before it was read.
            self._decoder.reset()
            self._partial = []
        text = self._decoder.decode(data)
        if "\n" not in text:
            if text:
                self._partial.append(text)
            return []
        lines = text.split("\n")
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
            self._partial = []
        rest = lines.pop()
        if rest:
            self._partial.append(rest)
        return [line + "\n" for line in lines]

    def finish(self) -> List[str]:
        text = "".join(self._partial) + self._decoder.decode(b"", final=True)
        self._partial = []
        return self._split_final(text)

    @staticmethod
    def _split_final(text: str) -> List[str]:
        if not text:
            return []
        lines = [line + "\n" for line in text.split("\n")]
        lines[-1] = lines[-1][:-1]
        return [line for line in lines if line]


class _Lines:
    """Per-stream splitters for a chunk source that may mix both streams."""

    def __init__(self, encoding: str, errors: str) -> None:
        codecs.lookup(encoding)  # raise LookupError now for an unknown encoding
        codecs.lookup_error(errors)
        self._encoding = encoding
        self._errors = errors
        self._splitters: Dict[str, _LineSplitter] = {}

    def feed(self, chunk: Chunk) -> List[str]:
        splitter = self._splitters.get(chunk.stream)
        if splitter is None:
            splitter = self._splitters[chunk.stream] = _LineSplitter(self._encoding, self._errors)
        return splitter.feed(chunk.data, chunk.skipped)

    def finish(self) -> List[str]:
        lines: List[str] = []
        for splitter in self._splitters.values():
            lines.extend(splitter.finish())
        return lines


def lines_from_chunks(chunks: Iterable[Chunk], encoding: str, errors: str) -> Iterator[str]:
    """Yield complete text lines from ``chunks``."""
    lines = _Lines(encoding, errors)
    for chunk in chunks:
        yield from lines.feed(chunk)
    yield from lines.finish()


async def _wait_async(owner: "StreamMethods", stream: "_native.NativeStream") -> None:
    """Wait in a worker thread (without the GIL) for the capture to change,
    first ending the owner's process if its deadline has passed."""
    loop = asyncio.get_running_loop()
    time_left = owner._time_left()
    if time_left is not None and time_left <= 0:
        await loop.run_in_executor(None, owner._expire)
        return
    slice_ = _ASYNC_WAIT_SLICE if time_left is None else min(_ASYNC_WAIT_SLICE, time_left)
    await loop.run_in_executor(None, stream.wait_for_change, slice_)


async def achunks(owner: "StreamMethods", stream: "_native.NativeStream") -> AsyncIterator[Chunk]:
    """Yield ``stream``'s chunks without blocking the event loop.

    Ready chunks are taken directly; when none is ready, a worker thread
    waits (without the GIL) for the capture to change.
    """
    while True:
        try:
            chunk = stream.try_next()
        except BlockingIOError:
            await _wait_async(owner, stream)
            continue
        if chunk is None:
            return
        yield chunk


async def alines(chunks: AsyncIterator[Chunk], encoding: str, errors: str) -> AsyncIterator[str]:
    """Yield complete text lines from async ``chunks``."""
    lines = _Lines(encoding, errors)
    async for chunk in chunks:
        for line in lines.feed(chunk):
            yield line
    for line in lines.finish():
        yield line


async def autf8_lines(owner: "StreamMethods", stream: "_native.NativeStream", errors: str) -> AsyncIterator[str]:
    """Yield ``stream``'s UTF-8 lines, split natively, without blocking the event loop."""
    while True:
        try:
            lines = stream.try_next_lines(errors)
        except BlockingIOError:
            await _wait_async(owner, stream)
            continue
        if lines is None:
            return
        for line in lines:
            yield line


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"



class StreamMethods:
    """``stream()``, ``lines()``, ``astream()`` and ``alines()`` over ``_open_stream``."""

    def _open_stream(self, which: str) -> "_native.NativeStream":
        raise NotImplementedError

    def _time_left(self) -> Optional[float]:
        """Seconds until the owner's deadline (at least 0), or None without one."""
        return None

    def _expire(self) -> None:
        """End the owner's process because its deadline passed."""

    def _chunks(self, stream: "_native.NativeStream") -> Iterator[Chunk]:
        while True:
            try:
                chunk = stream.next(self._time_left())
            except TimeoutError:
                self._expire()
                continue
            if chunk is None:
                return
            yield chunk

    def _next_lines(self, stream: "_native.NativeStream", errors: str) -> Optional[List[str]]:
        while True:
            try:
                return stream.next_lines(errors, self._time_left())
            except TimeoutError:
                self._expire()

    def stream(self, which: str = "both") -> Iterator[Chunk]:
        """Iterate over ``Chunk`` objects as the output arrives.

        ``which`` is ``"both"``, ``"stdout"`` or ``"stderr"``; ``"both"``
        interleaves the streams in the order the reads happened. Needs
        ``streaming_enabled``. Each iterator starts at the oldest retained
        byte and sees every retained byte once, in order; one that falls
        more than ``max_buffer_size`` behind loses the oldest bytes and the
        next chunk reports how many in ``skipped``. Waiting releases the GIL
        and Ctrl-C raises ``KeyboardInterrupt``. A failed read raises OSError
        once the bytes before it were delivered.
        """
        stream = self._open_stream(which)
        return stream if self._time_left() is None else self._chunks(stream)

    def lines(self, which: str = "both", encoding: str = "utf-8", errors: str = "replace") -> Iterator[str]:
        """Iterate over complete text lines, each ending in ``\\n`` (kept).

        ``\\r`` stays inside the line; a last line without a newline is still
        yielded. Multi-byte characters split across reads decode correctly,
        and decoding errors follow ``errors``.
        """
        stream = self._open_stream(which)
        if _is_utf8(encoding):
            codecs.lookup_error(errors)
            # Split and decoded natively, one list per chunk; chaining the
            # lists keeps Python frames out of the per-line path.
            return itertools.chain.from_iterable(iter(lambda: self._next_lines(stream, errors), None))
        chunks = stream if self._time_left() is None else self._chunks(stream)
        return lines_from_chunks(chunks, encoding, errors)

    def astream(self, which: str = "both") -> AsyncIterator[Chunk]:
        """``stream()`` as an async iterator that never blocks the event loop."""
        return achunks(self, self._open_stream(which))

    def alines(self, which: str = "both", encoding: str = "utf-8", errors: str = "replace") -> AsyncIterator[str]:
        """``lines()`` as an async iterator that never blocks the event loop."""
        stream = self._open_stream(which)
        if _is_utf8(encoding):
            codecs.lookup_error(errors)
            return autf8_lines(self, stream, errors)
        return alines(achunks(self, stream), encoding, errors)
