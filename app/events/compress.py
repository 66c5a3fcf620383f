"""Compressed streams: each message deflated once, the same bytes to every stream.

A gzip body is a 10-byte header, deflate data, then a trailer: the CRC32 and length of
everything it decompresses to. A compressed event stream here is the header, then each
message as the deflate blocks that a compressor of its own made from that message alone
and ended with a full flush (`Z_FULL_FLUSH`).

Why the same bytes can go to every stream, whatever each was sent before:
- a fresh compressor has no history, so no back-reference in a message's blocks points
  before the message; the full flush ends its blocks on a byte boundary (with an
  empty stored block, `00 00 ff ff`);
- none of those blocks is marked final, so a decoder reads on into whatever follows.
So any sequence of such messages, concatenated after the header, is one valid deflate
stream: a message is compressed once per event per instance (`Rendered.sse_gzip`), and
live delivery and replays hand out that one copy. The cost is the ratio: a message
cannot borrow from the ones before it (measured in docs/benchmarks.md).

The trailer is never sent. A live stream does not end on its own; when the server ends
one on purpose (a deploy, a stream that fell behind), its last message (`retry:`) is
complete and flushed, and the client reconnects whatever it makes of the missing
trailer. Writing a correct trailer would mean a CRC32 over every byte each stream was
sent, per stream: ~6.7 µs per 3.6 KB message on this machine's zlib (more for today's
~5.5 KB ones), against 40-140 µs that a whole delivery costs, so compressed streams would
cost more per delivery than plain ones. (Combining per-frame CRCs instead needs
crc32_combine, which Python's zlib does not offer; written in Python it costs more.)
Chromium (the browser tests) and `zlib.decompressobj(31)` (the stream tests) decode
what arrived without it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from werkzeug.datastructures import Accept

LEVEL = 9  # each message is compressed once per instance: spend the CPU on the ratio

# Magic, deflate, no flags, no time, no extra flags, "unknown" operating system.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def deflated(message: bytes) -> bytes:
    """`message` as deflate blocks that stand alone: from a compressor with no history,
    ended with a full flush and not final (see the module's docstring)."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(message) + compressor.flush(zlib.Z_FULL_FLUSH)


def wants_gzip(accepted: Accept, args: Mapping[str, str]) -> bool:
    """Whether to send this request's stream gzip-compressed: the client accepts gzip
    (`request.accept_encodings`, Werkzeug's reading of `Accept-Encoding`: gzip by name,
    or x-gzip by name, or `*` with neither named; with a q above 0) and did not ask for
    `?nocompress=1`."""
    if args.get("nocompress") == "1":
        return False
    named = {value.lower() for value, _q in accepted}
    if "x-gzip" in named and "gzip" not in named:
        return accepted.quality("x-gzip") > 0
    return accepted.quality("gzip") > 0
