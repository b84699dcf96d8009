"""Status codes, alert codes, sync modes and DevInf sync types."""

from __future__ import annotations

import pytest

from syncmld.protocol.codes import (
    SERVER_ALERTED_SYNC_TYPE,
    AlertCode,
    StatusCode,
    SyncMode,
    alert_to_sync_type,
    client_to_server_alerted_alert,
    is_server_alerted,
    is_success,
    is_sync_alert,
    server_alerted_to_client_alert,
    status_class,
    status_reason,
    sync_type_to_alert,
)

# Every status of the protocol reference's table (§3.2); 515 is not assigned.
ALL_STATUS = [101, *range(200, 217), *range(300, 306), *range(400, 429), *range(500, 515), 516, 517]


def test_every_status_code_is_there() -> None:
    assert sorted(int(c) for c in StatusCode) == ALL_STATUS
    assert 515 not in {int(c) for c in StatusCode}


@pytest.mark.parametrize(
    ("member", "value"),
    [
        (StatusCode.OK, 200),
        (StatusCode.ITEM_ADDED, 201),
        (StatusCode.AUTHENTICATION_ACCEPTED, 212),
        (StatusCode.CHUNKED_ITEM_ACCEPTED, 213),
        (StatusCode.INVALID_CREDENTIALS, 401),
        (StatusCode.MISSING_CREDENTIALS, 407),
        (StatusCode.INCOMPLETE_COMMAND, 412),
        (StatusCode.ALREADY_EXISTS, 418),
        (StatusCode.CONFLICT_RESOLVED_WITH_SERVER_DATA, 419),
        (StatusCode.SIZE_MISMATCH, 424),
        (StatusCode.REFRESH_REQUIRED, 508),
        (StatusCode.ITEM_NOT_DELETED, 211),
        (StatusCode.SESSION_CANCELLED, 514),
        (StatusCode.ATOMIC_RESPONSE_TOO_LARGE, 517),
    ],
)
def test_status_values(member: StatusCode, value: int) -> None:
    assert member == value
    assert StatusCode(value) is member


def test_status_reasons() -> None:
    assert StatusCode.REFRESH_REQUIRED.reason == "Refresh required"
    assert all(c.reason for c in StatusCode)
    assert status_reason(424) == "Size mismatch"
    assert status_reason(299) == "Success"  # unknown but classifiable
    assert status_reason(42) == "Not a status code"


def test_is_success() -> None:
    assert is_success(200)
    assert is_success(StatusCode.ITEM_NOT_DELETED)  # "treat as success"
    assert is_success(StatusCode.CHUNKED_ITEM_ACCEPTED)
    assert not is_success(101)
    assert not is_success(300)
    assert not is_success(StatusCode.REFRESH_REQUIRED)
    assert [status_class(c) for c in (101, 212, 305, 418, 511, 99, 600)] == [1, 2, 3, 4, 5, 0, 0]


def test_alert_codes() -> None:
    assert int(AlertCode.DISPLAY) == 100
    assert [int(a) for a in AlertCode if 200 <= a <= 210] == list(range(200, 211))
    assert int(AlertCode.TWO_WAY) == 200
    assert int(AlertCode.REFRESH_FROM_SERVER_BY_SERVER) == 210
    assert int(AlertCode.RESULT_ALERT) == 221
    assert int(AlertCode.NEXT_MESSAGE) == 222
    assert int(AlertCode.NO_END_OF_DATA) == 223
    assert int(AlertCode.SUSPEND) == 224
    assert int(AlertCode.RESUME) == 225
    assert is_sync_alert(200) and is_sync_alert(210) and not is_sync_alert(222)
    assert is_server_alerted(206) and not is_server_alerted(205) and not is_server_alerted(211)


MODES = [
    (SyncMode.TWO_WAY, 200, 206, 1),
    (SyncMode.SLOW, 201, 201, 2),
    (SyncMode.ONE_WAY_FROM_CLIENT, 202, 207, 3),
    (SyncMode.REFRESH_FROM_CLIENT, 203, 208, 4),
    (SyncMode.ONE_WAY_FROM_SERVER, 204, 209, 5),
    (SyncMode.REFRESH_FROM_SERVER, 205, 210, 6),
]


@pytest.mark.parametrize(("mode", "client", "by_server", "sync_type"), MODES)
def test_sync_modes(mode: SyncMode, client: int, by_server: int, sync_type: int) -> None:
    assert mode.to_alert() == client
    assert mode.to_alert(server_alerted=True) == by_server
    assert SyncMode.from_alert(client) is mode
    assert SyncMode.from_alert(by_server) is mode
    assert mode.sync_type == sync_type
    assert SyncMode.from_sync_type(sync_type) is mode
    assert sync_type_to_alert(sync_type) == client
    assert alert_to_sync_type(client) == sync_type


def test_server_alerted_mapping() -> None:
    pairs = {200: 206, 202: 207, 203: 208, 204: 209, 205: 210}
    for client, by_server in pairs.items():
        assert client_to_server_alerted_alert(client) == by_server
        assert server_alerted_to_client_alert(by_server) == client
        assert server_alerted_to_client_alert(client) == client
        assert client_to_server_alerted_alert(by_server) == by_server
        assert alert_to_sync_type(by_server) == SERVER_ALERTED_SYNC_TYPE == 7
    with pytest.raises(ValueError):
        client_to_server_alerted_alert(201)  # no server-alerted slow sync
    with pytest.raises(ValueError):
        server_alerted_to_client_alert(222)


@pytest.mark.parametrize("bad", [0, 7, 8, 390001, -1])
def test_sync_type_without_alert(bad: int) -> None:
    with pytest.raises(ValueError):
        sync_type_to_alert(bad)


@pytest.mark.parametrize("bad", [100, 199, 211, 222, 225])
def test_not_a_sync_alert(bad: int) -> None:
    with pytest.raises(ValueError):
        SyncMode.from_alert(bad)
    with pytest.raises(ValueError):
        alert_to_sync_type(bad)
