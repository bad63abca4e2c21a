"""Tiny valid images, generated with the standard library only.

Each encoder paints a solid colour, so a test can tell which asset a downloaded picture came
from by its bytes (``colour_for`` maps an id to a stable colour).
"""

from __future__ import annotations

import hashlib
import struct
import zlib

Colour = tuple[int, int, int]


def colour_for(key: str) -> Colour:
    """A stable colour derived from ``key`` (an asset or person id)."""
    digest = hashlib.sha256(key.encode()).digest()
    return digest[0], digest[1], digest[2]


def png(colour: Colour, width: int = 8, height: int = 8) -> bytes:
    """A solid-colour 8-bit RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(colour) * width  # filter byte 0 (None) before each scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class _BitWriter:
    """Bits packed most-significant first, with JPEG's 0xFF byte stuffing."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._count = 0

    def write(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> shift) & 1)
            self._count += 1
            if self._count == 8:
                self._emit()

    def _emit(self) -> None:
        self._out.append(self._acc)
        if self._acc == 0xFF:
            self._out.append(0x00)
        self._acc = 0
        self._count = 0

    def finish(self) -> bytes:
        while self._count:  # pad the last byte with 1-bits, as the standard asks
            self.write(1, 1)
        return bytes(self._out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg(colour: Colour, width: int = 8, height: int = 8) -> bytes:
    """A solid-colour baseline JPEG (YCbCr, no subsampling, quantiser 1, DC-only blocks).

    A flat block has only a DC coefficient, so the Huffman tables need just the twelve DC
    size categories and one AC symbol (end of block); every block after the first repeats
    the same DC value and so codes a difference of zero.
    """
    r, g, b = colour
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    dc_values = [round(8 * (c - 128)) for c in (y, cb, cr)]

    bits = _BitWriter()
    previous = [0, 0, 0]
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    for _ in range(blocks):
        for component, value in enumerate(dc_values):
            diff = value - previous[component]
            previous[component] = value
            size = abs(diff).bit_length()
            bits.write(size, 4)  # DC table: category n has the 4-bit code n
            if size:
                bits.write(diff if diff >= 0 else diff + (1 << size) - 1, size)
            bits.write(0, 1)  # AC table: end of block has the 1-bit code 0
    scan = bits.finish()

    dc_table = bytes([0x00]) + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    ac_table = bytes([0x10]) + bytes([1] + [0] * 15) + bytes([0x00])
    frame = struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0])
    return (
        b"\xff\xd8"
        + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + _segment(0xDB, b"\x00" + b"\x01" * 64)
        + _segment(0xC0, frame)
        + _segment(0xC4, dc_table + ac_table)
        + _segment(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))
        + scan
        + b"\xff\xd9"
    )


def webp(colour: Colour, width: int = 8, height: int = 8) -> bytes:
    """A solid-colour lossless WebP (VP8L).

    Every prefix code holds a single symbol, which the format codes with zero bits, so the
    pixel data is empty whatever the size.
    """
    acc = 0
    count = 0

    def put(value: int, length: int) -> None:  # VP8L packs bits least-significant first
        nonlocal acc, count
        acc |= value << count
        count += length

    put(width - 1, 14)
    put(height - 1, 14)
    put(0, 1)  # alpha not used
    put(0, 3)  # version
    put(0, 1)  # no transforms
    put(0, 1)  # no colour cache
    put(0, 1)  # no meta prefix codes
    for symbol in (colour[1], colour[0], colour[2], 255):  # green, red, blue, alpha
        put(1, 1)  # simple code
        put(0, 1)  # one symbol
        put(1, 1)  # written with 8 bits
        put(symbol, 8)
    put(1, 1)  # distance code: simple, one symbol, 1-bit form, symbol 0
    put(0, 1)
    put(0, 1)
    put(0, 1)
    payload = b"\x2f" + acc.to_bytes((count + 7) // 8, "little")
    if len(payload) % 2:
        chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\x00"
    else:
        chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
