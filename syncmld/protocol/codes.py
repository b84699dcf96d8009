"""SyncML status codes, alert codes and sync modes.

:class:`StatusCode` holds every code of the ``Status/Data`` table and
:class:`AlertCode` every code of the ``Alert/Data`` table of the SyncML
representation protocol (1.0-1.2).  :class:`SyncMode` names the six ways of
synchronizing a datastore and maps them to and from the alert codes a client
(200-205) or a server-alerted client (206-210) sends.

DevInf ``SyncCap`` lists *sync types*, which are not alert codes: type ``n``
(1-6) is alert ``199 + n`` and type 7 means "can be alerted by the server"
(see :func:`sync_type_to_alert`, :func:`alert_to_sync_type`).
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Final


class StatusCode(IntEnum):
    """Every status code of the SyncML representation protocol (``Status/Data``)."""

    IN_PROGRESS = 101

    OK = 200
    ITEM_ADDED = 201
    ACCEPTED_FOR_PROCESSING = 202
    NON_AUTHORITATIVE_RESPONSE = 203
    NO_CONTENT = 204
    RESET_CONTENT = 205
    PARTIAL_CONTENT = 206
    CONFLICT_RESOLVED_WITH_MERGE = 207
    CONFLICT_RESOLVED_WITH_CLIENT_WINNING = 208
    CONFLICT_RESOLVED_WITH_DUPLICATE = 209
    DELETE_WITHOUT_ARCHIVE = 210
    ITEM_NOT_DELETED = 211
    AUTHENTICATION_ACCEPTED = 212
    CHUNKED_ITEM_ACCEPTED = 213
    OPERATION_CANCELLED = 214
    NOT_EXECUTED = 215
    ATOMIC_ROLL_BACK_OK = 216

    MULTIPLE_CHOICES = 300
    MOVED_PERMANENTLY = 301
    FOUND = 302
    SEE_OTHER = 303
    NOT_MODIFIED = 304
    USE_PROXY = 305

    BAD_REQUEST = 400
    INVALID_CREDENTIALS = 401
    PAYMENT_REQUIRED = 402
    FORBIDDEN = 403
    NOT_FOUND = 404
    COMMAND_NOT_ALLOWED = 405
    OPTIONAL_FEATURE_NOT_SUPPORTED = 406
    MISSING_CREDENTIALS = 407
    REQUEST_TIMEOUT = 408
    CONFLICT = 409
    GONE = 410
    SIZE_REQUIRED = 411
    INCOMPLETE_COMMAND = 412
    REQUEST_ENTITY_TOO_LARGE = 413
    URI_TOO_LONG = 414
    UNSUPPORTED_MEDIA_TYPE = 415
    REQUESTED_SIZE_TOO_BIG = 416
    RETRY_LATER = 417
    ALREADY_EXISTS = 418
    CONFLICT_RESOLVED_WITH_SERVER_DATA = 419
    DEVICE_FULL = 420
    UNKNOWN_SEARCH_GRAMMAR = 421
    BAD_CGI_SCRIPT = 422
    SOFT_DELETE_CONFLICT = 423
    SIZE_MISMATCH = 424
    PERMISSION_DENIED = 425
    PARTIAL_ITEM_NOT_ACCEPTED = 426
    ITEM_NOT_EMPTY = 427
    MOVE_FAILED = 428

    COMMAND_FAILED = 500
    COMMAND_NOT_IMPLEMENTED = 501
    BAD_GATEWAY = 502
    SERVICE_UNAVAILABLE = 503
    GATEWAY_TIMEOUT = 504
    DTD_VERSION_NOT_SUPPORTED = 505
    PROCESSING_ERROR = 506
    ATOMIC_FAILED = 507
    REFRESH_REQUIRED = 508
    #: "Reserved" in the standard; libsynthesis answers a resume request it
    #: cannot honour with it.
    RESERVED = 509
    DATA_STORE_FAILURE = 510
    SERVER_FAILURE = 511
    SYNCHRONIZATION_FAILED = 512
    PROTOCOL_VERSION_NOT_SUPPORTED = 513
    #: "Operation cancelled" in the standard (the same words as 214); used for
    #: commands left unprocessed when a session is cancelled or suspended.
    SESSION_CANCELLED = 514
    ATOMIC_ROLL_BACK_FAILED = 516
    ATOMIC_RESPONSE_TOO_LARGE = 517

    @property
    def reason(self) -> str:
        """The standard's short description, e.g. ``"Refresh required"``."""
        return _REASONS[self]


_REASONS: Final[dict[int, str]] = {
    101: "In progress",
    200: "OK",
    201: "Item added",
    202: "Accepted for processing",
    203: "Non-authoritative response",
    204: "No content",
    205: "Reset content",
    206: "Partial content",
    207: "Conflict resolved with merge",
    208: "Conflict resolved with client's command winning",
    209: "Conflict resolved with duplicate",
    210: "Delete without archive",
    211: "Item not deleted",
    212: "Authentication accepted",
    213: "Chunked item accepted and buffered",
    214: "Operation cancelled",
    215: "Not executed",
    216: "Atomic roll back OK",
    300: "Multiple choices",
    301: "Moved permanently",
    302: "Found",
    303: "See other",
    304: "Not modified",
    305: "Use proxy",
    400: "Bad request",
    401: "Invalid credentials",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Command not allowed",
    406: "Optional feature not supported",
    407: "Missing credentials",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    411: "Size required",
    412: "Incomplete command",
    413: "Request entity too large",
    414: "URI too long",
    415: "Unsupported media type or format",
    416: "Requested size too big",
    417: "Retry later",
    418: "Already exists",
    419: "Conflict resolved with server data",
    420: "Device full",
    421: "Unknown search grammar",
    422: "Bad CGI script",
    423: "Soft-delete conflict",
    424: "Size mismatch",
    425: "Permission denied",
    426: "Partial item not accepted",
    427: "Item not empty",
    428: "Move failed",
    500: "Command failed",
    501: "Command not implemented",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    505: "DTD version not supported",
    506: "Processing error",
    507: "Atomic failed",
    508: "Refresh required",
    509: "Reserved",
    510: "Data store failure",
    511: "Server failure",
    512: "Synchronization failed",
    513: "Protocol version not supported",
    514: "Operation cancelled",
    516: "Atomic roll back failed",
    517: "Atomic response too large to fit",
}


def is_success(code: int) -> bool:
    """True for a 2xx status (211 "not deleted" and 213 "chunk buffered" included)."""
    return 200 <= code <= 299


def status_class(code: int) -> int:
    """The class digit of a status: 1 informational, 2 success, 3 redirection,
    4 originator (peer) error, 5 recipient error; 0 for a number outside 100-599."""
    return code // 100 if 100 <= code <= 599 else 0


def status_reason(code: int) -> str:
    """A short description of any status number, known or not (for log lines)."""
    reason = _REASONS.get(code)
    if reason is not None:
        return reason
    return _CLASS_REASONS.get(status_class(code), "Not a status code")


_CLASS_REASONS: Final[dict[int, str]] = {
    1: "Informational",
    2: "Success",
    3: "Redirection",
    4: "Originator error",
    5: "Recipient error",
}


class AlertCode(IntEnum):
    """Every alert code of the SyncML representation protocol (``Alert/Data``)."""

    DISPLAY = 100
    TWO_WAY = 200
    SLOW_SYNC = 201
    ONE_WAY_FROM_CLIENT = 202
    REFRESH_FROM_CLIENT = 203
    ONE_WAY_FROM_SERVER = 204
    REFRESH_FROM_SERVER = 205
    TWO_WAY_BY_SERVER = 206
    ONE_WAY_FROM_CLIENT_BY_SERVER = 207
    REFRESH_FROM_CLIENT_BY_SERVER = 208
    ONE_WAY_FROM_SERVER_BY_SERVER = 209
    REFRESH_FROM_SERVER_BY_SERVER = 210
    RESULT_ALERT = 221
    NEXT_MESSAGE = 222
    NO_END_OF_DATA = 223
    SUSPEND = 224
    RESUME = 225


def is_sync_alert(code: int) -> bool:
    """True for an alert that starts a datastore sync (200-210)."""
    return 200 <= code <= 210


def is_server_alerted(code: int) -> bool:
    """True for the server-alerted sync codes 206-210."""
    return 206 <= code <= 210


class SyncMode(Enum):
    """The six ways of synchronizing one datastore pair."""

    TWO_WAY = "two-way"
    SLOW = "slow"
    ONE_WAY_FROM_CLIENT = "one-way-from-client"
    REFRESH_FROM_CLIENT = "refresh-from-client"
    ONE_WAY_FROM_SERVER = "one-way-from-server"
    REFRESH_FROM_SERVER = "refresh-from-server"

    @property
    def sync_type(self) -> int:
        """The DevInf ``SyncType`` number of this mode (1-6)."""
        return _MODE_ALERT[self] - 199

    def to_alert(self, *, server_alerted: bool = False) -> AlertCode:
        """The alert code for this mode.

        With ``server_alerted`` the 206-210 variant.  There is no server-alerted
        slow sync code: :attr:`SLOW` is always 201, which is what libsynthesis
        alerts in a session a server notification started.
        """
        code = _MODE_ALERT[self]
        if server_alerted and self is not SyncMode.SLOW:
            return _BY_SERVER[code]
        return code

    @classmethod
    def from_alert(cls, code: int) -> SyncMode:
        """The mode of a sync alert 200-210 (206-210 map to their 200/202-205 mode).

        Raises:
            ValueError: ``code`` is not a sync alert.
        """
        base = _FROM_SERVER.get(code, code)
        for mode, c in _MODE_ALERT.items():
            if c == base:
                return mode
        raise ValueError(f"{code} is not a sync alert code")

    @classmethod
    def from_sync_type(cls, sync_type: int) -> SyncMode:
        """The mode of a DevInf ``SyncType`` 1-6.

        Raises:
            ValueError: any other number (7 is a capability, not a mode).
        """
        return cls.from_alert(sync_type_to_alert(sync_type))


_MODE_ALERT: Final[dict[SyncMode, AlertCode]] = {
    SyncMode.TWO_WAY: AlertCode.TWO_WAY,
    SyncMode.SLOW: AlertCode.SLOW_SYNC,
    SyncMode.ONE_WAY_FROM_CLIENT: AlertCode.ONE_WAY_FROM_CLIENT,
    SyncMode.REFRESH_FROM_CLIENT: AlertCode.REFRESH_FROM_CLIENT,
    SyncMode.ONE_WAY_FROM_SERVER: AlertCode.ONE_WAY_FROM_SERVER,
    SyncMode.REFRESH_FROM_SERVER: AlertCode.REFRESH_FROM_SERVER,
}
#: Client alert code -> its server-alerted variant.
_BY_SERVER: Final[dict[AlertCode, AlertCode]] = {
    AlertCode.TWO_WAY: AlertCode.TWO_WAY_BY_SERVER,
    AlertCode.ONE_WAY_FROM_CLIENT: AlertCode.ONE_WAY_FROM_CLIENT_BY_SERVER,
    AlertCode.REFRESH_FROM_CLIENT: AlertCode.REFRESH_FROM_CLIENT_BY_SERVER,
    AlertCode.ONE_WAY_FROM_SERVER: AlertCode.ONE_WAY_FROM_SERVER_BY_SERVER,
    AlertCode.REFRESH_FROM_SERVER: AlertCode.REFRESH_FROM_SERVER_BY_SERVER,
}
_FROM_SERVER: Final[dict[int, AlertCode]] = {v: k for k, v in _BY_SERVER.items()}


def server_alerted_to_client_alert(code: int) -> AlertCode:
    """206-210 -> 200, 202-205; a client alert code 200-205 is returned as it is.

    Raises:
        ValueError: ``code`` is not a sync alert.
    """
    if code in _FROM_SERVER:
        return _FROM_SERVER[code]
    if 200 <= code <= 205:
        return AlertCode(code)
    raise ValueError(f"{code} is not a sync alert code")


def client_to_server_alerted_alert(code: int) -> AlertCode:
    """200, 202-205 -> 206-210; a server-alerted code is returned as it is.

    Raises:
        ValueError: 201 (there is no server-alerted slow sync) or not a sync alert.
    """
    if code in _BY_SERVER:
        return _BY_SERVER[AlertCode(code)]
    if code in _FROM_SERVER:
        return AlertCode(code)
    raise ValueError(f"{code} has no server-alerted variant")


#: DevInf ``SyncType`` meaning "supports server-alerted sync".
SERVER_ALERTED_SYNC_TYPE: Final = 7


def sync_type_to_alert(sync_type: int) -> AlertCode:
    """The alert code of a DevInf ``SyncType`` 1-6 (``199 + n``).

    Raises:
        ValueError: 7 (server-alerted sync is a capability, not an alert) or
            any other number (libsynthesis, for one, lists a private 390001).
    """
    if 1 <= sync_type <= 6:
        return AlertCode(199 + sync_type)
    raise ValueError(f"SyncType {sync_type} has no alert code")


def alert_to_sync_type(code: int) -> int:
    """The DevInf ``SyncType`` a peer must list to accept alert ``code``.

    200-205 map to 1-6, the server-alerted codes 206-210 to 7 (the peer also
    needs the base mode's type, :attr:`SyncMode.sync_type`).

    Raises:
        ValueError: ``code`` is not a sync alert.
    """
    if 200 <= code <= 205:
        return code - 199
    if code in _FROM_SERVER:
        return SERVER_ALERTED_SYNC_TYPE
    raise ValueError(f"{code} is not a sync alert code")
