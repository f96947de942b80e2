"""Fast unit tier for the ttyd leg's frame pump, on top of tests/test_relay.py (real ttyd).

Bytes as ttyd sends them are fed to the protocol in chosen chunks, so batching, partial frames,
control frames between data frames and pausing are checked exactly.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

from jupyter_popebot_code.errors import CLOSE_MESSAGE_TOO_BIG
from jupyter_popebot_code.terminal.frames import mask_payload
from jupyter_popebot_code.terminal.ttyd_protocol import TtydProtocol


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked frame, as a WebSocket server (ttyd) sends it."""
    if len(payload) < 126:
        head = struct.pack("!BB", 0x80 | opcode, len(payload))
    elif len(payload) <= 0xFFFF:
        head = struct.pack("!BBH", 0x80 | opcode, 126, len(payload))
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, len(payload))
    return head + payload


def client_payload(frame: bytes) -> tuple[int, bytes]:
    """Opcode and unmasked payload of one masked client frame (what the relay sent ttyd)."""
    assert frame[1] & 0x80, "client frames must be masked"
    length, offset = frame[1] & 0x7F, 2
    if length == 126:
        (length,), offset = struct.unpack_from("!H", frame, 2), 4
    mask = frame[offset : offset + 4]
    return frame[0] & 0x0F, mask_payload(mask, frame[offset + 4 : offset + 4 + length])


class Transport:
    """Records what the protocol does to its socket."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.reading = True
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


class Sink:
    """The relay's side: takes frames while `accept` says so."""

    def __init__(self) -> None:
        self.batches: list[bytes] = []
        self.accept = True
        self.closed = False

    def forward(self, frames: memoryview) -> bool:
        self.batches.append(bytes(frames))
        return self.accept

    def backend_closed(self) -> None:
        self.closed = True


def run(test: Callable[[TtydProtocol, Transport, Sink], None], limit: int = 1 << 20) -> None:
    async def main() -> None:
        protocol = TtydProtocol("ttyd", 7681, {}, limit)
        transport = Transport()
        protocol.transport = transport  # type: ignore[assignment]
        protocol.upgraded.set_result(None)
        sink = Sink()
        protocol.attach(sink)
        test(protocol, transport, sink)

    asyncio.run(main())


OUT = [server_frame(0x2, b"0" + bytes([65 + i]) * (100 + 400 * i)) for i in range(4)]


def test_complete_frames_go_in_one_write_and_a_partial_one_waits() -> None:
    def check(protocol: TtydProtocol, transport: Transport, sink: Sink) -> None:
        stream = b"".join(OUT)
        cut = len(OUT[0]) + len(OUT[1]) + 3  # inside the third frame's header
        protocol.data_received(stream[:cut])
        assert sink.batches == [OUT[0] + OUT[1]]
        protocol.data_received(stream[cut:])
        assert sink.batches == [OUT[0] + OUT[1], OUT[2] + OUT[3]]

    run(check)


def test_a_ping_between_output_is_answered_and_not_forwarded() -> None:
    def check(protocol: TtydProtocol, transport: Transport, sink: Sink) -> None:
        protocol.data_received(OUT[0] + server_frame(0x9, b"hi") + OUT[1])
        assert sink.batches == [OUT[0], OUT[1]]
        assert [client_payload(frame) for frame in transport.written] == [(0xA, b"hi")]

    run(check)


def test_a_sink_that_is_behind_pauses_reading_until_resumed() -> None:
    def check(protocol: TtydProtocol, transport: Transport, sink: Sink) -> None:
        sink.accept = False
        protocol.data_received(OUT[0] + server_frame(0x9, b"") + OUT[1])
        # The frames before the ping were taken; the rest waits, unread, until resume().
        assert sink.batches == [OUT[0]]
        assert not transport.reading
        assert transport.written == []
        sink.accept = True
        protocol.resume()
        assert sink.batches == [OUT[0], OUT[1]]
        assert transport.reading
        assert [client_payload(frame)[0] for frame in transport.written] == [0xA]

    run(check)


def test_a_close_frame_keeps_its_code_and_reason_and_is_answered() -> None:
    def check(protocol: TtydProtocol, transport: Transport, sink: Sink) -> None:
        protocol.data_received(OUT[0] + server_frame(0x8, struct.pack("!H", 1000) + b"bye"))
        assert sink.batches == [OUT[0]]
        assert (protocol.close_code, protocol.close_reason) == (1000, "bye")
        assert client_payload(transport.written[-1]) == (0x8, struct.pack("!H", 1000))
        assert transport.closing
        protocol.connection_lost(None)
        assert sink.closed

    run(check)


def test_a_message_over_the_limit_closes_the_leg() -> None:
    def check(protocol: TtydProtocol, transport: Transport, sink: Sink) -> None:
        protocol.data_received(OUT[3][:20])
        assert sink.batches == []
        assert protocol.close_code == CLOSE_MESSAGE_TOO_BIG
        assert transport.closing

    run(check, limit=1000)
