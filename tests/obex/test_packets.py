"""The OBEX packet codec and the framing reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.obex.errors import ObexProtocolError, ObexUsageError
from syncmld.obex.packets import (
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    ConnectParams,
    Header,
    HeaderEncoding,
    HeaderId,
    Opcode,
    PacketReader,
    Request,
    Response,
    ResponseCode,
    SetpathParams,
    decode_request,
    decode_response,
    name_header,
    parse_type,
    type_header,
)

from .helpers import (
    SYNCML_SYNC,
    WBXML,
    load_trace,
    requests,
    responses,
    split_at,
    syncml_messages,
)

# -- the recorded SyncEvolution/OpenOBEX session ---------------------------------------------


def test_trace_round_trips_byte_identically() -> None:
    trace = load_trace()
    assert len(trace) == 16
    for i, line in enumerate(trace):
        if line.client:
            packet: Request | Response = decode_request(line.data)
        else:
            packet = decode_response(line.data, to_connect=i == 1)
        assert packet.encode() == line.data


def test_trace_fields_and_bodies() -> None:
    trace = load_trace()
    connect = decode_request(trace[0].data)
    assert connect.opcode is Opcode.CONNECT and connect.final
    assert connect.connect == ConnectParams(max_packet=0x7FFF, version=0x10, flags=0)
    assert connect.header(HeaderId.TARGET) == Header(HeaderId.TARGET, SYNCML_SYNC)

    answer = decode_response(trace[1].data, to_connect=True)
    assert answer.code is ResponseCode.OK
    assert answer.connect is not None and answer.connect.max_packet == 0xFFFF
    assert answer.connection_id == 1
    assert answer.header(HeaderId.WHO) == Header(HeaderId.WHO, SYNCML_SYNC)

    puts = [decode_request(t.data) for t in trace if t.client and t.data[0] == 0x82]
    gets = [decode_request(t.data) for t in trace if t.client and t.data[0] == 0x83]
    # SyncEvolution sends each message as one PUT-final carrying Body (not End-of-Body).
    assert [p.body for p in puts] == syncml_messages("c2s")
    assert all(not p.has_end_of_body for p in puts)
    assert all(p.mime_type == WBXML for p in puts + gets)
    assert all(p.headers[0].id is HeaderId.CONNECTION_ID for p in puts + gets)
    assert [p.header(HeaderId.LENGTH) for p in puts] == [
        Header(HeaderId.LENGTH, len(b)) for b in syncml_messages("c2s")
    ]
    replies = [decode_response(t.data) for t in trace[5::4]]
    assert [r.body for r in replies] == syncml_messages("s2c")[:3]


def test_whole_trace_through_one_reader_in_odd_chunks() -> None:
    trace = load_trace()
    stream = b"".join(t.data for t in trace if t.client)
    reader = PacketReader(0x7FFF)
    frames = []
    for chunk in split_at(stream, list(range(0, len(stream), 997))):
        reader.feed(chunk)
        while (frame := reader.next_frame()) is not None:
            frames.append(frame)
        assert reader.buffered < reader.max_packet
    assert frames == [t.data for t in trace if t.client]


# -- headers ----------------------------------------------------------------------------------


def test_header_encodings_by_high_bits() -> None:
    assert Header(0x30, "x").encoding is HeaderEncoding.UNICODE
    assert Header(0x70, b"x").encoding is HeaderEncoding.BYTES
    assert Header(0xB0, 7).encoding is HeaderEncoding.BYTE
    assert Header(0xF0, 7).encoding is HeaderEncoding.INT32
    assert Header(0xB0, 7).encode() == b"\xb0\x07"
    assert Header(0xF0, 0x01020304).encode() == b"\xf0\x01\x02\x03\x04"
    assert Header(0x42, b"a").id is HeaderId.TYPE


def test_name_is_utf16be_nul_terminated() -> None:
    assert name_header("Ä.vcf").encode() == b"\x01\x00\x0f" + "Ä.vcf\0".encode("utf-16-be")
    assert name_header("").encode() == b"\x01\x00\x03"
    packet = Request(opcode=Opcode.PUT, headers=(name_header("日本"),)).encode()
    assert decode_request(packet).header(HeaderId.NAME) == name_header("日本")


def test_type_header_and_parse_type() -> None:
    assert type_header(WBXML).data == WBXML.encode() + b"\0"
    # Nokia's S60 plugin trims trailing NUL and space before comparing types.
    assert parse_type(b"application/vnd.syncml+wbxml \0\0") == WBXML
    with pytest.raises(ObexProtocolError) as err:
        parse_type(b"\xff\0")
    assert err.value.code is ResponseCode.BAD_REQUEST
    with pytest.raises(ObexUsageError):
        type_header("tëxt/plain")


@pytest.mark.parametrize(
    ("header_id", "value"),
    [
        (0x01, b"bytes for text"),
        (0x01, "has\0nul"),
        (0x42, "text for bytes"),
        (0x97, 256),
        (0x97, True),
        (0xCB, -1),
        (0xCB, 2**32),
        (0x48, b"x" * (MAX_PACKET_SIZE - 2)),
        (256, 0),
    ],
)
def test_header_values_must_fit_their_encoding(header_id: int, value: object) -> None:
    with pytest.raises(ObexUsageError):
        Header(header_id, value)  # type: ignore[arg-type]


def test_header_accessors_check_kind() -> None:
    h = Header(HeaderId.CONNECTION_ID, 5)
    assert h.number == 5
    with pytest.raises(ObexUsageError):
        _ = h.data
    with pytest.raises(ObexUsageError):
        _ = h.text
    with pytest.raises(ObexUsageError):
        _ = Header(HeaderId.NAME, "n").number


# -- packets ---------------------------------------------------------------------------------


def test_request_field_rules() -> None:
    with pytest.raises(ObexUsageError):
        Request(opcode=Opcode.CONNECT)
    with pytest.raises(ObexUsageError):
        Request(opcode=Opcode.PUT, connect=ConnectParams(max_packet=255))
    with pytest.raises(ObexUsageError):
        Request(opcode=Opcode.SETPATH)
    with pytest.raises(ObexUsageError):
        Request(opcode=Opcode.DISCONNECT, final=False)
    with pytest.raises(ObexUsageError):
        ConnectParams(max_packet=0x10000)
    with pytest.raises(ObexUsageError):
        Request(opcode=Opcode.PUT, headers=(Header(0x48, b"x" * 40000),) * 2).encode()


def test_setpath_and_abort_wire_form() -> None:
    setpath = Request(opcode=Opcode.SETPATH, setpath=SetpathParams(flags=0x03))
    assert setpath.encode() == b"\x85\x00\x05\x03\x00"
    assert decode_request(setpath.encode()) == setpath
    assert Request(opcode=Opcode.ABORT).encode() == b"\xff\x00\x03"
    assert Request(opcode=Opcode.PUT, final=False).encode() == b"\x02\x00\x03"


def test_failed_connect_response_without_fields_is_accepted() -> None:
    # PyOBEX's server answers a refused CONNECT with a bare "C3 00 03".
    assert decode_response(b"\xc3\x00\x03", to_connect=True) == Response(
        code=ResponseCode.FORBIDDEN
    )
    with pytest.raises(ObexProtocolError):
        decode_response(b"\xa0\x00\x03", to_connect=True)
    refused = Response(code=ResponseCode.NOT_FOUND, connect=ConnectParams(max_packet=4096))
    assert decode_response(refused.encode(), to_connect=True) == refused


def test_response_codes_are_the_wire_values() -> None:
    assert int(ResponseCode.CONTINUE) == 0x90
    assert ResponseCode.OK.is_success and ResponseCode.PARTIAL_CONTENT.is_success
    assert not ResponseCode.CONTINUE.is_success
    assert int(ResponseCode.UNSUPPORTED_MEDIA_TYPE) == 0xCF
    assert int(ResponseCode.DATABASE_LOCKED) == 0xE1


# -- malformed input --------------------------------------------------------------------------

MALFORMED_CONTENT = [
    # (packet, response code) - correctly framed, bad inside: never fatal.
    ("820006480000", ResponseCode.BAD_REQUEST),  # PyOBEX's 6-byte hang: header length 0
    ("820006480002", ResponseCode.BAD_REQUEST),  # header length 2
    ("8200084800094142", ResponseCode.BAD_REQUEST),  # header runs past the packet
    ("820006cb0000", ResponseCode.BAD_REQUEST),  # truncated 4-byte header
    ("82000497", ResponseCode.BAD_REQUEST),  # truncated 1-byte header
    ("8200054800", ResponseCode.BAD_REQUEST),  # truncated header length
    ("82000701000441", ResponseCode.BAD_REQUEST),  # odd UTF-16 length
    ("820008010005d800", ResponseCode.BAD_REQUEST),  # lone surrogate
    ("82000a01000700000041", ResponseCode.BAD_REQUEST),  # NUL inside text
    ("8000051000", ResponseCode.BAD_REQUEST),  # CONNECT without its fields
    ("0000071000ffff", ResponseCode.BAD_REQUEST),  # CONNECT without the final bit
    ("010003", ResponseCode.BAD_REQUEST),  # DISCONNECT without the final bit
    ("85000400", ResponseCode.BAD_REQUEST),  # SETPATH without its fields
    ("040003", ResponseCode.NOT_IMPLEMENTED),  # unknown opcode
    ("880003", ResponseCode.NOT_IMPLEMENTED),
]


@pytest.mark.parametrize(("hexdata", "code"), MALFORMED_CONTENT)
def test_malformed_requests_raise_typed_errors(hexdata: str, code: ResponseCode) -> None:
    data = bytes.fromhex(hexdata)
    reader = PacketReader()
    reader.feed(data)
    try:
        frame = reader.next_frame()
    except ObexProtocolError as err:
        assert err.fatal
        return
    assert frame == data
    with pytest.raises(ObexProtocolError) as err_info:
        decode_request(frame)
    assert err_info.value.code is code
    assert not err_info.value.fatal
    assert reader.next_frame() is None


def test_six_byte_packet_pyobex_hung_on_finishes() -> None:
    reader = PacketReader()
    reader.feed(bytes.fromhex("820006480000") + bytes.fromhex("810003"))
    with pytest.raises(ObexProtocolError) as err:
        reader.next_request()
    assert err.value.code is ResponseCode.BAD_REQUEST and not err.value.fatal
    # The bad packet was consumed; the stream goes on.
    assert reader.next_request() == Request(opcode=Opcode.DISCONNECT)


@pytest.mark.parametrize("length", [0, 1, 2])
def test_packet_length_below_three_is_fatal(length: int) -> None:
    reader = PacketReader()
    reader.feed(bytes((0x82,)) + length.to_bytes(2, "big") + b"rest")
    with pytest.raises(ObexProtocolError) as err:
        reader.next_frame()
    assert err.value.fatal and err.value.code is ResponseCode.BAD_REQUEST
    assert reader.failed and reader.buffered == 0
    reader.feed(b"more input is dropped")
    assert reader.buffered == 0
    with pytest.raises(ObexProtocolError):
        reader.next_frame()


def test_packet_above_maximum_is_refused_before_it_is_buffered() -> None:
    reader = PacketReader(MIN_PACKET_SIZE)
    reader.feed(b"\x82\x01")
    assert reader.next_frame() is None
    reader.feed(b"\x00")  # length 256 > 255: known after 3 bytes
    with pytest.raises(ObexProtocolError) as err:
        reader.next_frame()
    assert err.value.fatal and err.value.code is ResponseCode.REQUEST_ENTITY_TOO_LARGE


def test_decode_checks_the_length_field() -> None:
    with pytest.raises(ObexProtocolError) as err:
        decode_request(b"\x82\x00\x06\x48\x00")
    assert err.value.fatal
    with pytest.raises(ObexProtocolError):
        decode_response(b"\xa0\x00")
    with pytest.raises(ObexProtocolError) as err:
        decode_response(b"\x10\x00\x03")  # a response code without the final bit
    assert err.value.code is ResponseCode.BAD_REQUEST


def test_reader_rejects_silly_maximum() -> None:
    with pytest.raises(ObexUsageError):
        PacketReader(100)


def test_byte_by_byte_feeding() -> None:
    trace = load_trace()
    reader = PacketReader(0x7FFF)
    got = []
    for t in (t for t in trace if t.client):
        for byte in t.data:
            reader.feed(bytes((byte,)))
            frame = reader.next_frame()
            if frame is not None:
                got.append(frame)
            assert reader.buffered < len(t.data)
    assert got == [t.data for t in trace if t.client]


# -- properties --------------------------------------------------------------------------------


@given(requests())
def test_request_round_trip(request: Request) -> None:
    wire = request.encode()
    decoded = decode_request(wire)
    assert decoded == request
    assert decoded.encode() == wire


@given(st.booleans().flatmap(lambda c: st.tuples(st.just(c), responses(to_connect=c))))
def test_response_round_trip(case: tuple[bool, Response]) -> None:
    to_connect, response = case
    wire = response.encode()
    assert decode_response(wire, to_connect=to_connect) == response


@given(st.lists(requests(), min_size=1, max_size=5), st.lists(st.integers(0, 10_000)))
def test_reader_reassembles_any_chunking(packets: list[Request], cuts: list[int]) -> None:
    stream = b"".join(p.encode() for p in packets)
    reader = PacketReader(MAX_PACKET_SIZE)
    got: list[Request] = []
    for chunk in split_at(stream, cuts):
        reader.feed(chunk)
        while (packet := reader.next_request()) is not None:
            got.append(packet)
    assert got == packets
    assert reader.buffered == 0


@given(st.binary(max_size=300), st.integers(MIN_PACKET_SIZE, 400))
def test_garbage_only_raises_protocol_errors(garbage: bytes, max_packet: int) -> None:
    reader = PacketReader(max_packet)
    reader.feed(garbage)
    for _ in range(len(garbage) + 1):
        try:
            frame = reader.next_frame()
        except ObexProtocolError as err:
            assert err.fatal
            return
        if frame is None:
            break
        assert 3 <= len(frame) <= max_packet
        for decode in (decode_request, decode_response):
            try:
                packet = decode(frame)
            except ObexProtocolError as err:
                assert not err.fatal
                assert isinstance(err.code, ResponseCode)
            else:
                assert decode(packet.encode()) == packet
    assert reader.buffered < max_packet
