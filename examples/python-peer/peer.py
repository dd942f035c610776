"""A LinkCall peer without a browser: joins a room by its link, beeps a tone, reports what it hears.

    python peer.py http://127.0.0.1:8080/r/<room> [--record DIR] [--tone HZ]

It speaks the protocol of PROTOCOL.md with aiortc. Every event is one JSON object per line on
stdout; commands are read one per line on stdin: `mute`, `unmute`, `leave`.
"""

import argparse
import array
import asyncio
import contextlib
import fractions
import json
import math
import re
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

PROTOCOL_VERSION = 1
SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
PING_EVERY = 10.0  # seconds between heartbeats
RELAY_TIMEOUT = 25.0  # silence after which the socket is taken for dead
CLOSE_RESUMING = 4000  # "keep my seat, I will resume"
RESEND_AFTER = 2.0  # unacknowledged signals go again after this, doubling
ACK_DELAY = 0.15  # an acknowledgement waits this long for a message to ride on
NACK_DELAY = 0.03  # ...but only this long after a duplicate or a gap
REFUSED = {"room_full", "bad_room_id", "unsupported_version", "too_many_connections", "too_many_rooms"}

Message = dict[str, Any]


def emit(event: str, **fields: Any) -> None:
    """Reports one event on stdout, as a JSON line."""
    print(json.dumps({"event": event, **fields}), flush=True)


def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's host addresses, or loopback when there is nothing else (a loopback-only
    network, as in our tests): aioice leaves 127.0.0.1 out."""
    return default_host_addresses(use_ipv4, use_ipv6) or ["127.0.0.1"]


default_host_addresses = aioice.ice.get_host_addresses
aioice.ice.get_host_addresses = host_addresses


class Refused(Exception):
    """The relay will not seat us (the room is full, the link is wrong...)."""


class Tone(MediaStreamTrack):
    """A beep of a sine, the first quarter of every second, or silence while muted: muted,
    it keeps sending packets, as a browser's disabled track does. Beeps rather than a
    continuous tone: a browser's echo canceller takes a peer that never pauses for echo
    and turns its own microphone down."""

    kind = "audio"

    def __init__(self, hertz: float, muted: Callable[[], bool]) -> None:
        super().__init__()
        # A quarter second of 440 Hz is a whole number of periods: the beep ends without a click.
        beep = SAMPLE_RATE // 4
        self.second = array.array(
            "h",
            (
                int(16_000 * math.sin(2 * math.pi * hertz * n / SAMPLE_RATE)) if n < beep else 0
                for n in range(SAMPLE_RATE)
            ),
        ).tobytes()
        self.silence = bytes(2 * FRAME_SAMPLES)
        self.muted = muted
        self.start: float | None = None  # when the first frame went
        self.sent = 0  # samples

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self.start = self.start or time.monotonic()
        await asyncio.sleep(self.start + self.sent / SAMPLE_RATE - time.monotonic())
        offset = 2 * (self.sent % SAMPLE_RATE)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(self.silence if self.muted() else self.second[offset : offset + len(self.silence)])
        frame.pts, frame.sample_rate, frame.time_base = self.sent, SAMPLE_RATE, fractions.Fraction(1, SAMPLE_RATE)
        self.sent += FRAME_SAMPLES
        return frame


class Channel:
    """Numbered signals to one peer: `seq` from 1, a cumulative `ack`, only the next in order
    applied, everything unacknowledged sent again until it is acknowledged."""

    def __init__(self, peer: int, send: Callable[[Message], None]) -> None:
        self.peer, self.send_message = peer, send
        self.next_seq, self.expected = 1, 1
        self.unacked: dict[int, list[Message]] = {}
        self.resend_wait = RESEND_AFTER
        self.resend_timer: asyncio.TimerHandle | None = None
        self.ack_timer: asyncio.TimerHandle | None = None

    def send(self, signals: list[Message]) -> None:
        self.unacked[self.next_seq] = signals
        self.put(self.next_seq, signals)
        self.next_seq += 1
        if self.resend_timer is None:
            self.arm_resend()

    def receive(self, seq: int, ack: int, signals: list[Message]) -> list[Message]:
        """Takes a numbered message in; returns the signals to apply (none unless it is the
        next in order)."""
        acked = [n for n in self.unacked if n <= ack]
        for n in acked:
            del self.unacked[n]
        if acked:
            self.resend_wait = RESEND_AFTER
            self.arm_resend()
        if seq == 0:
            return []
        in_order = seq == self.expected
        if in_order:
            self.expected += 1
        if self.ack_timer is None or not in_order:
            self.cancel_ack()
            self.ack_timer = asyncio.get_running_loop().call_later(
                ACK_DELAY if in_order else NACK_DELAY, self.put, 0, []
            )
        return signals if in_order else []

    def resend(self) -> None:
        """Sends again what is not acknowledged (after a resume, or when acks stay away)."""
        for seq, signals in self.unacked.items():
            self.put(seq, signals)

    def put(self, seq: int, signals: list[Message]) -> None:
        self.cancel_ack()  # every message carries our acknowledgement
        message = {"type": "signals", "to": self.peer, "seq": seq, "ack": self.expected - 1}
        self.send_message(message | ({"signals": signals} if signals else {}))

    def arm_resend(self) -> None:
        if self.resend_timer:
            self.resend_timer.cancel()
        self.resend_timer = None
        if self.unacked:
            self.resend_timer = asyncio.get_running_loop().call_later(self.resend_wait, self.resend_due)

    def resend_due(self) -> None:
        self.resend()
        self.resend_wait = min(2 * self.resend_wait, 16 * RESEND_AFTER)
        self.arm_resend()

    def cancel_ack(self) -> None:
        if self.ack_timer:
            self.ack_timer.cancel()
        self.ack_timer = None

    def close(self) -> None:
        self.cancel_ack()
        self.unacked.clear()
        self.arm_resend()


class Peer:
    """One remote peer: its RTCPeerConnection, its channel, and what we hear from it."""

    def __init__(self, call: "Call", peer: int, offer: bool) -> None:
        self.id, self.call = peer, call
        self.pc = RTCPeerConnection(call.configuration)
        self.tone = Tone(call.hertz, lambda: call.muted)
        self.sending = False
        self.channel = Channel(peer, call.send)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.energy, self.samples = 0.0, 0  # heard since the last report
        self.wav: wave.Wave_write | None = None
        self.pc.on("track", self.on_track)
        self.pc.on("connectionstatechange", self.on_state)
        self.tasks = [asyncio.create_task(self.negotiate(offer))]

    async def negotiate(self, offer: bool) -> None:
        """Offers if we are the newcomer, then applies the peer's signals one at a time."""
        if offer:
            self.send_tone()
            await self.pc.setLocalDescription(await self.pc.createOffer())
            self.channel.send([{"kind": "offer", "sdp": self.pc.localDescription.sdp}])
        while True:
            signal = await self.inbox.get()
            try:
                await self.apply(signal)
            except Exception as error:  # one bad signal must not end the call
                emit("error", peer=self.id, message=f"{signal['kind']}: {error!r}")

    async def apply(self, signal: Message) -> None:
        # aiortc gathers every candidate before a description is set, so our offers and
        # answers carry them all: we send no candidate signals.
        if signal["kind"] == "offer":
            if self.pc.signalingState != "stable":
                # Our own offer is out: only the newcomer offers first, and we restart nothing,
                # so the peer answers ours before it offers (see README, limitations).
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(signal["sdp"], "offer"))
            self.send_tone()
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.channel.send([{"kind": "answer", "sdp": self.pc.localDescription.sdp}])
        elif signal["kind"] == "answer" and self.pc.signalingState == "have-local-offer":
            await self.pc.setRemoteDescription(RTCSessionDescription(signal["sdp"], "answer"))
        elif signal["kind"] == "candidate":
            candidate = candidate_from_sdp(signal["candidate"].removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = signal.get("sdp_mid"), signal.get("sdp_m_line_index")
            await self.pc.addIceCandidate(candidate)

    def send_tone(self) -> None:
        """Puts our tone on the connection, once: after the peer's offer it takes the offer's
        audio transceiver, so the answer is two-way."""
        if not self.sending:
            self.pc.addTrack(self.tone)
            self.sending = True

    def on_state(self) -> None:
        if self.pc.connectionState == "connected":
            emit("connected", peer=self.id)

    def on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.tasks.append(asyncio.create_task(self.listen(track)))

    async def listen(self, track: MediaStreamTrack) -> None:
        """Adds up what the peer's audio weighs (and records it, if asked)."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, AudioFrame)
            channels = len(frame.layout.channels)  # s16, interleaved
            pcm = bytes(frame.planes[0])[: 2 * frame.samples * channels]
            self.energy += sum(s * s for s in array.array("h", pcm)) / 32768.0**2
            self.samples += frame.samples * channels
            if self.call.record and not self.wav:
                self.wav = wave.open(str(self.call.record / f"peer-{self.id}.wav"), "wb")
                self.wav.setnchannels(channels)
                self.wav.setsampwidth(2)
                self.wav.setframerate(frame.sample_rate)
            if self.wav:
                self.wav.writeframes(pcm)

    def level(self) -> float:
        """The RMS level heard since the last call (0 when nothing arrived)."""
        rms = math.sqrt(self.energy / self.samples) if self.samples else 0.0
        self.energy, self.samples = 0.0, 0
        return round(rms, 4)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.channel.close()
        await self.pc.close()
        if self.wav:
            self.wav.close()


class Call:
    """Our seat in the room and the relay session that holds it."""

    def __init__(self, link: str, hertz: float, record: Path | None) -> None:
        url = urlsplit(link)
        room = re.fullmatch(r"/r/([a-z2-7]{26})", url.path)
        if not room:
            raise SystemExit(f"not a room link: {link}")
        self.room = room.group(1)
        # The page's own rule: the socket is /ws on the page's host.
        self.ws_url = f"{'wss' if url.scheme == 'https' else 'ws'}://{url.netloc}/ws"
        # A relay started with --allowed-origin takes only the page's origin.
        self.origin = f"{url.scheme}://{url.netloc}"
        self.hertz, self.record, self.muted = hertz, record, False
        self.me: int | None = None
        self.token: str | None = None
        self.configuration = RTCConfiguration()
        self.peers: dict[int, Peer] = {}
        self.ws: ClientConnection | None = None
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.joined = False
        self.heard = time.monotonic()
        self.leaving = False
        self.refused = False

    def send(self, message: Message) -> None:
        """Sends if we are joined; otherwise drops (signals wait in their channel)."""
        if self.joined:
            self.outbox.put_nowait(json.dumps(message))

    async def run(self) -> None:
        """Holds the seat until we leave: reconnects and resumes when the socket drops."""
        while not self.leaving:
            try:
                # proxy=None: the relay is reached directly, whatever the environment says.
                async with connect(self.ws_url, origin=Origin(self.origin), proxy=None) as ws:
                    await self.session(ws)
            except InvalidStatus as error:  # e.g. 403: our Origin is not allowed
                emit("error", message=f"the relay refused the socket: {error}")
                self.refused = self.leaving = True
            except Refused:
                self.refused = self.leaving = True
            except (OSError, ConnectionClosed, TimeoutError) as error:
                if not self.leaving:
                    emit("reconnecting", reason=repr(error))
            self.ws, self.joined = None, False
            if not self.leaving:
                await asyncio.sleep(1)
        for peer in list(self.peers):
            await self.remove(peer, told=False)

    async def session(self, ws: ClientConnection) -> None:
        """One socket: join (or resume), then read, write and heartbeat until it ends."""
        self.ws, self.outbox = ws, asyncio.Queue()
        join = {"type": "join", "version": PROTOCOL_VERSION, "room": self.room}
        await ws.send(json.dumps(join | ({"resume": self.token} if self.token else {})))
        self.heard = time.monotonic()
        tasks = [asyncio.create_task(job) for job in (self.read(ws), self.write(ws), self.heartbeat(ws))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a bug surfaces here with its traceback
        finally:
            for task in tasks:
                task.cancel()

    async def read(self, ws: ClientConnection) -> None:
        async for text in ws:
            self.heard = time.monotonic()
            await self.on_message(json.loads(text))

    async def heartbeat(self, ws: ClientConnection) -> None:
        """Pings every 10 s; 25 s without a word from the relay means the socket is dead."""
        while time.monotonic() - self.heard < RELAY_TIMEOUT:
            await asyncio.sleep(PING_EVERY)
            await ws.send(json.dumps({"type": "ping"}))
        await ws.close(CLOSE_RESUMING)

    async def write(self, ws: ClientConnection) -> None:
        while True:
            await ws.send(await self.outbox.get())
            self.outbox.task_done()

    async def on_message(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "joined":
            await self.on_joined(message)
        elif kind == "peer_joined":
            self.add(message["peer"], offer=False)
        elif kind == "peer_left":
            await self.remove(message["peer"])
        elif kind in ("signal", "signals"):
            # A newcomer's first signal can overtake the relay's peer_joined.
            peer = self.peers.get(message["from"]) or self.add(message["from"], offer=False)
            signals = (
                [message["signal"]]
                if kind == "signal"
                else peer.channel.receive(message["seq"], message["ack"], message.get("signals", []))
            )
            for signal in signals:
                peer.inbox.put_nowait(signal)
        elif kind == "error":
            if message["code"] == "unknown_peer" and "peer" in message:
                await self.remove(message["peer"])  # it left while we were away
            else:
                emit("error", code=message["code"], message=message["message"])
                if message["code"] in REFUSED and not self.joined:
                    raise Refused(message["code"])
        # pong, and any type a newer relay adds: nothing to do.

    async def on_joined(self, message: Message) -> None:
        self.joined, self.token = True, message["resume"]
        resumed = message.get("resumed", False) and message["you"] == self.me
        emit("joined", peer=message["you"], peers=message["peers"], resumed=resumed)
        if resumed:
            # Same seat: connections are still good; forget who left, resend what may be lost,
            # and tell each peer where we stand.
            for gone in set(self.peers) - set(message["peers"]):
                await self.remove(gone)
            for channel in (peer.channel for peer in self.peers.values()):
                channel.resend()
                channel.put(0, [])
            return
        # A new seat: start over with everyone, offering to each one already there.
        for gone in list(self.peers):
            await self.remove(gone, told=False)
        self.me = message["you"]
        self.configuration = RTCConfiguration(
            # Always explicit, even empty: given None, aiortc would use a public STUN server.
            iceServers=[
                RTCIceServer(urls=server["urls"], username=server.get("username"), credential=server.get("credential"))
                for server in message["ice_servers"]
            ],
            iceTransportPolicy=RTCIceTransportPolicy(message.get("ice_transport_policy", "all")),
        )
        for peer in message["peers"]:
            self.add(peer, offer=True)

    def add(self, peer: int, offer: bool) -> Peer:
        if peer not in self.peers:
            self.peers[peer] = Peer(self, peer, offer)
        return self.peers[peer]

    async def remove(self, peer: int, told: bool = True) -> None:
        if gone := self.peers.pop(peer, None):
            await gone.close()
            if told:
                emit("peer_left", peer=peer)

    async def report_levels(self) -> None:
        """Each second, the RMS level heard from each peer over that second."""
        while True:
            await asyncio.sleep(1)
            for peer in list(self.peers.values()):
                emit("level", peer=peer.id, rms=peer.level())

    async def commands(self) -> None:
        """Reads `mute`, `unmute` and `leave` from stdin; leaves at its end too (the test
        that started us is gone)."""
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode():
            command = line.strip()
            if command in ("mute", "unmute"):
                self.muted = command == "mute"
            elif command == "leave":
                break
            elif command:
                emit("error", message=f"unknown command {command!r}")
        await self.leave()

    async def leave(self) -> None:
        """Leaves for good: the room hears peer_left at once (no resume). Ends `run`."""
        self.leaving = True
        if self.ws:
            with contextlib.suppress(ConnectionClosed):
                if self.joined:
                    await self.ws.send(json.dumps({"type": "leave"}))
                await self.ws.close()  # 1000: a close frame alone says we left, too


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("link", help="the room's share link, http(s)://host/r/<room>")
    parser.add_argument("--tone", type=int, default=440, help="the tone we beep, in Hz (default 440)")
    parser.add_argument("--record", type=Path, help="a folder to write what each peer sends to, peer-<id>.wav")
    args = parser.parse_args()
    call = Call(args.link, args.tone, args.record)
    tasks = [asyncio.create_task(call.report_levels()), asyncio.create_task(call.commands())]
    await call.run()
    for task in tasks:
        task.cancel()
    if call.refused:
        sys.exit(1)
    emit("left")


if __name__ == "__main__":
    asyncio.run(main())
