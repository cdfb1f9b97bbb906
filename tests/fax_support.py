"""Fax test material: documents with known pixels, reading received pages
back, and a lossy UDP relay that really drops datagrams between two sockets."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from PIL import Image, ImageDraw


def make_pages(pages: int, height: int = 1100) -> list[Image.Image]:
    """Black-and-white fax pages (1728 wide) with distinct content."""
    images = []
    for n in range(pages):
        page = Image.new("1", (1728, height), 1)
        draw = ImageDraw.Draw(page)
        for k in range(40):
            x, y = (k * 53 + n * 17) % 1600, (k * 37 + n * 29) % (height - 100)
            draw.rectangle([x, y, x + 20 + n * 3, y + 15 + k % 7], fill=0)
        draw.text((100, 60), f"kalliope-tel fax test, page {n + 1} of {pages}", fill=0)
        images.append(page)
    return images


def make_document(path: Path, pages: int = 5, height: int = 1100) -> list[Image.Image]:
    """A multi-page G4 TIFF at 204x196 dpi, as a fax machine sends."""
    images = make_pages(pages, height)
    images[0].save(path, save_all=True, append_images=images[1:], compression="group4", dpi=(204, 196))
    return images


def received_pages(path: Path) -> list[bytes]:
    """Every page of a TIFF as 8-bit pixels, for exact comparison."""
    image = Image.open(path)
    out = []
    for n in range(getattr(image, "n_frames", 1)):
        image.seek(n)
        out.append(image.convert("L").tobytes())
    return out


def page_bytes(images: list[Image.Image]) -> list[bytes]:
    return [page.convert("L").tobytes() for page in images]


class LossyRelay:
    """Forwards datagrams between side A and side B, dropping ``loss`` of
    them at random (seeded), in both directions. Each side sends to its own
    relay socket; the relay learns the sender's address from its first packet
    and the other side's from ``b_target``/``a_target``."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss = loss
        self.random = random.Random(seed)
        self.forwarded = 0
        self.dropped = 0
        self.a_socket: asyncio.DatagramTransport | None = None
        self.b_socket: asyncio.DatagramTransport | None = None
        self.a_peer: tuple[str, int] | None = None
        self.b_peer: tuple[str, int] | None = None

    async def start(self, a_peer: tuple[str, int], b_peer: tuple[str, int]) -> tuple[tuple[str, int], tuple[str, int]]:
        """Open the two relay sockets; return (address for A to send to, for B)."""
        loop = asyncio.get_running_loop()
        self.a_peer, self.b_peer = a_peer, b_peer
        relay = self

        class Side(asyncio.DatagramProtocol):
            def __init__(self, name: str) -> None:
                self.name = name

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                relay._forward(self.name, data)

        self.a_socket, _ = await loop.create_datagram_endpoint(lambda: Side("a"), local_addr=("127.0.0.1", 0))
        self.b_socket, _ = await loop.create_datagram_endpoint(lambda: Side("b"), local_addr=("127.0.0.1", 0))
        return self.a_socket.get_extra_info("sockname")[:2], self.b_socket.get_extra_info("sockname")[:2]

    def _forward(self, side: str, data: bytes) -> None:
        if self.random.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        if side == "a" and self.b_socket is not None:
            self.b_socket.sendto(data, self.b_peer)
        elif side == "b" and self.a_socket is not None:
            self.a_socket.sendto(data, self.a_peer)

    def close(self) -> None:
        for sock in (self.a_socket, self.b_socket):
            if sock is not None:
                sock.close()
