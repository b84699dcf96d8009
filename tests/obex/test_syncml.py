"""The SyncML OBEX binding in both directions."""

from __future__ import annotations

import pytest

from syncmld.obex.client import ClientConfig
from syncmld.obex.errors import ObexUsageError
from syncmld.obex.events import GetRequested, PutComplete
from syncmld.obex.packets import MIN_PACKET_SIZE, PacketReader, ResponseCode
from syncmld.obex.server import ObexServer, ServerConfig
from syncmld.obex.syncml import (
    SAN_TYPE,
    SYNCML_TYPES,
    SYNCML_WBXML,
    SYNCML_XML,
    BindingEvent,
    ClientPhase,
    MessageReceived,
    NotificationSent,
    ReplyWanted,
    RequestRejected,
    SessionEnded,
    SessionStarted,
    SyncmlObexClientBinding,
    SyncmlObexServerBinding,
    sniff_content_type,
)

from .helpers import connect, get, load_trace, put, syncml_messages

C2S = syncml_messages("c2s")
S2C = syncml_messages("s2c")


def test_sniff_content_type() -> None:
    assert sniff_content_type(C2S[0]) == SYNCML_WBXML
    assert sniff_content_type(b"\x01\x01\x6a\x00") == SYNCML_WBXML
    assert sniff_content_type(b"\x03") == SYNCML_WBXML
    assert sniff_content_type(b'<?xml version="1.0"?><SyncML/>') == SYNCML_XML
    assert sniff_content_type(b"\xef\xbb\xbf\r\n  <SyncML>") == SYNCML_XML
    assert sniff_content_type(b"") is None
    assert sniff_content_type(b"\x04garbage") is None
    assert sniff_content_type(b"BEGIN:VCARD") is None


# -- phone as OBEX client --------------------------------------------------------------------------


def test_server_binding_replays_syncevolution_session() -> None:
    binding = SyncmlObexServerBinding()
    received: list[bytes] = []
    replies = iter(S2C)
    answers = PacketReader()
    for line in (t for t in load_trace() if t.client):
        for event in binding.receive_data(line.data):
            if isinstance(event, MessageReceived):
                assert event.content_type == SYNCML_WBXML
                received.append(event.body)
                # Answer before the GET arrives: the reply waits for it.
                binding.send_reply(next(replies))
            else:
                assert isinstance(event, SessionStarted | SessionEnded)
        answers.feed(binding.data_to_send())
    assert received == C2S
    bodies: list[bytes] = []
    while (response := answers.next_response(to_connect=not bodies)) is not None:
        bodies.append(response.body)
    assert [b for b in bodies if b] == S2C[:3]


def test_server_binding_reply_after_get() -> None:
    binding = SyncmlObexServerBinding()
    binding.receive_data(connect())
    binding.data_to_send()
    (message,) = binding.receive_data(put(C2S[0]))
    assert message == MessageReceived(body=C2S[0], content_type=SYNCML_WBXML)
    binding.data_to_send()
    assert binding.receive_data(get()) == [ReplyWanted(content_type=SYNCML_WBXML)]
    assert binding.data_to_send() == b""  # the phone waits
    binding.send_reply(S2C[0])
    reader = PacketReader()
    reader.feed(binding.data_to_send())
    response = reader.next_response()
    assert response is not None and response.code is ResponseCode.OK
    assert response.body == S2C[0]


def test_server_binding_checks_reply_encoding() -> None:
    binding = SyncmlObexServerBinding()
    binding.receive_data(connect())
    binding.receive_data(put(C2S[0]))
    with pytest.raises(ObexUsageError):
        binding.send_reply(b"<SyncML/>")  # the phone spoke WBXML
    binding.send_reply(S2C[0])
    with pytest.raises(ObexUsageError):
        binding.send_reply(S2C[1])  # one reply per message


def test_server_binding_xml_phone() -> None:
    binding = SyncmlObexServerBinding()
    binding.receive_data(connect())
    (message,) = binding.receive_data(put(b"<SyncML/>", mime=SYNCML_XML))
    assert message == MessageReceived(body=b"<SyncML/>", content_type=SYNCML_XML)
    assert binding.peer_content_type == SYNCML_XML


def test_server_binding_rejections() -> None:
    binding = SyncmlObexServerBinding()
    (refused,) = binding.receive_data(connect(target=b"SYNCML-DM"))
    assert isinstance(refused, RequestRejected) and refused.code is ResponseCode.NOT_FOUND
    binding.receive_data(connect())
    (wrong,) = binding.receive_data(put(b"BEGIN:VCARD", mime="text/x-vcard"))
    assert isinstance(wrong, RequestRejected)
    assert wrong.code is ResponseCode.UNSUPPORTED_MEDIA_TYPE
    (empty,) = binding.receive_data(put(b""))
    assert empty == RequestRejected(code=ResponseCode.BAD_REQUEST, reason="empty PUT")


def test_server_binding_session_end() -> None:
    binding = SyncmlObexServerBinding()
    binding.receive_data(connect())
    binding.receive_data(put(C2S[0]))
    (ended,) = binding.receive_data(b"")
    assert ended == SessionEnded(clean=False, reason="end of stream")
    with pytest.raises(ObexUsageError):
        binding.send_reply(S2C[0])
    broken = SyncmlObexServerBinding()
    (failed,) = broken.receive_data(b"\x80\x00\x01")
    assert isinstance(failed, SessionEnded) and not failed.clean
    assert failed.code is ResponseCode.BAD_REQUEST


# -- PC as OBEX client -------------------------------------------------------------------------


class FakePhone:
    """The phone's OBEX server side of a server-alerted session (a plain ObexServer).

    It accepts the SAN, then answers each GET with its next message and
    records every PUT.
    """

    def __init__(self, messages: list[bytes], config: ServerConfig | None = None) -> None:
        self.obex = ObexServer(
            config or ServerConfig(put_types=SYNCML_TYPES | {SAN_TYPE}, max_packet=4096)
        )
        self.messages = list(messages)
        self.puts: list[tuple[str | None, bytes]] = []
        self.get_answer: ResponseCode | None = None

    def handle(self, data: bytes) -> bytes:
        for event in self.obex.receive_data(data):
            if isinstance(event, PutComplete):
                self.puts.append((event.type, event.body))
                self.obex.accept_put()
            elif isinstance(event, GetRequested):
                if self.get_answer is not None:
                    self.obex.reject_get(self.get_answer)
                else:
                    self.obex.send_get_response(self.messages.pop(0) if self.messages else b"")
        return self.obex.data_to_send()


def _run(binding: SyncmlObexClientBinding, phone: FakePhone) -> list[BindingEvent]:
    events: list[BindingEvent] = []
    for _ in range(10_000):
        up = binding.data_to_send()
        if not up:
            return events
        events += binding.receive_data(phone.handle(up))
    raise AssertionError("no end")


def test_client_binding_full_session() -> None:
    phone = FakePhone([C2S[0], C2S[1], C2S[2]])
    binding = SyncmlObexClientBinding(config=ClientConfig(max_packet=MIN_PACKET_SIZE))
    san = b"\x00" * 16 + b"\x02\xd8\x00\x00\x00\x00\x00\x00\x08PC Suite"
    binding.start(san)
    events = _run(binding, phone)
    assert events == [
        SessionStarted(max_packet=4096),
        NotificationSent(),
        MessageReceived(body=C2S[0], content_type=SYNCML_WBXML),
    ]
    assert phone.puts == [(SAN_TYPE, san)]
    assert binding.phase is ClientPhase.WAITING
    binding.send_message(S2C[0])
    assert _run(binding, phone) == [MessageReceived(body=C2S[1], content_type=SYNCML_WBXML)]
    binding.send_message(S2C[1])
    assert _run(binding, phone) == [MessageReceived(body=C2S[2], content_type=SYNCML_WBXML)]
    binding.send_message(S2C[2], last=True)
    assert _run(binding, phone) == [SessionEnded(clean=True, reason="disconnected")]
    assert phone.puts[1:] == [(SYNCML_WBXML, m) for m in S2C[:3]]
    assert binding.phase in {ClientPhase.CLOSED}
    binding.close()  # harmless afterwards


def test_client_binding_11_san_and_close() -> None:
    phone = FakePhone([C2S[0]])
    binding = SyncmlObexClientBinding(san_type=SYNCML_WBXML)
    binding.start(b"\x02pkg0")
    _run(binding, phone)
    assert phone.puts == [(SYNCML_WBXML, b"\x02pkg0")]
    with pytest.raises(ObexUsageError):
        binding.start(b"again")
    binding.close()
    assert _run(binding, phone) == [SessionEnded(clean=True, reason="disconnected")]


def test_client_binding_connect_refused() -> None:
    phone = FakePhone([], ServerConfig(targets=frozenset({b"OTHER"})))
    binding = SyncmlObexClientBinding()
    binding.start(b"san")
    (ended,) = _run(binding, phone)
    assert ended == SessionEnded(
        clean=False, reason="phone refused CONNECT with 0xC4", code=ResponseCode.NOT_FOUND
    )
    assert binding.phase is ClientPhase.CLOSED


def test_client_binding_san_refused_disconnects() -> None:
    # Nokia S60 accepts only WBXML and the SAN type: an XML notification is refused.
    phone = FakePhone([], ServerConfig(put_types=frozenset({SYNCML_WBXML, SAN_TYPE})))
    binding = SyncmlObexClientBinding(san_type=SYNCML_XML)
    binding.start(b"<SyncML/>")
    events = _run(binding, phone)
    assert events[-1] == SessionEnded(
        clean=False,
        reason="phone refused the notification PUT with 0xCF",
        code=ResponseCode.UNSUPPORTED_MEDIA_TYPE,
    )


def test_client_binding_get_refused_like_nokia_with_dialog_open() -> None:
    phone = FakePhone([C2S[0]])
    phone.get_answer = ResponseCode.FORBIDDEN
    binding = SyncmlObexClientBinding()
    binding.start(b"san")
    events = _run(binding, phone)
    assert events[-1] == SessionEnded(
        clean=False, reason="phone refused the GET with 0xC3", code=ResponseCode.FORBIDDEN
    )


def test_client_binding_empty_get_is_a_failure() -> None:
    phone = FakePhone([])
    binding = SyncmlObexClientBinding()
    binding.start(b"san")
    events = _run(binding, phone)
    assert isinstance(events[-1], SessionEnded) and not events[-1].clean
    assert events[-1].reason == "phone answered the GET without a message"


def test_client_binding_connection_lost() -> None:
    binding = SyncmlObexClientBinding()
    binding.start(b"san")
    binding.data_to_send()
    assert binding.receive_data(b"") == [SessionEnded(clean=False, reason="end of stream")]
    with pytest.raises(ObexUsageError):
        binding.send_message(b"x")


def test_client_binding_garbage_from_phone() -> None:
    binding = SyncmlObexClientBinding()
    binding.start(b"san")
    binding.data_to_send()
    (ended,) = binding.receive_data(b"\xa0\x00\x01")
    assert isinstance(ended, SessionEnded) and not ended.clean


def test_client_binding_against_server_binding() -> None:
    """Our own two bindings back to back: the phone side is a server binding accepting SAN."""
    phone = SyncmlObexServerBinding(ServerConfig(put_types=SYNCML_TYPES | {SAN_TYPE}))
    pc = SyncmlObexClientBinding()
    pc.start(b"san")
    phone_messages = iter(C2S)
    pc_events: list[BindingEvent] = []
    answered = 0
    for _ in range(100):
        up = pc.data_to_send()
        if not up:
            break
        for event in phone.receive_data(up):
            reply = next(phone_messages, None) if isinstance(event, MessageReceived) else None
            if reply is not None:  # nothing to say after the PC's last message
                phone.send_reply(reply)
        for event in pc.receive_data(phone.data_to_send()):
            pc_events.append(event)
            if isinstance(event, MessageReceived):
                pc.send_message(S2C[answered], last=answered == len(C2S) - 1)
                answered += 1
    assert [e.body for e in pc_events if isinstance(e, MessageReceived)] == C2S
    assert pc_events[-1] == SessionEnded(clean=True, reason="disconnected")
    assert phone.obex.state.name == "CLOSED"
