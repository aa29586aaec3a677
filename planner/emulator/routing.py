"""Which RPC a request names and with what: path routing, query parameters, the JSON body, the
page size, and the `Answer` it gets; what each RPC does is `app`'s and `lro`'s, the sockets
`handler`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from planner.emulator import wire
from planner.emulator.config import EmulatorConfig
from planner.emulator.wire import ApiFailure

SYSTEM_PARAMS: Final = frozenset(
    {
        "alt", "$alt", "prettyPrint", "$prettyPrint", "pp", "fields", "$fields", "key", "quotaUser",
        "$.xgafv", "access_token", "oauth_token", "callback", "uploadType", "upload_protocol",
        "upload_type", "userIp", "$callback",
    }
)
_METHOD_PARAMS: Final[dict[str, frozenset[str]]] = {
    "list": frozenset({"filter", "pageSize", "page_size", "pageToken", "page_token", "readMask", "read_mask"}),
    "operations.list": frozenset(
        {"filter", "pageSize", "page_size", "pageToken", "page_token", "returnPartialSuccess",
         "return_partial_success"}
    ),
    "operations.wait": frozenset({"timeout"}),
}


@dataclass(frozen=True)
class Route:
    rpc: str
    project: str
    location: str
    job_id: str | None = None
    op_id: str | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def job_name(self) -> str:
        return f"{self.parent}/customJobs/{self.job_id}"


# (shape of the path after projects/P/locations/L, custom verb) → {HTTP method: rpc}; "*" is an ID.
_ROUTES: Final[dict[tuple[tuple[str, ...], str | None], dict[str, str]]] = {
    (("customJobs",), None): {"GET": "list", "POST": "create"},
    (("customJobs", "*"), None): {"GET": "get", "DELETE": "delete"},
    (("customJobs", "*"), "cancel"): {"POST": "cancel"},
    (("operations",), None): {"GET": "operations.list"},
    (("operations", "*"), None): {"GET": "operations.get", "DELETE": "operations.delete"},
    (("operations", "*"), "cancel"): {"POST": "operations.cancel"},
    (("operations", "*"), "wait"): {"POST": "operations.wait"},
    (("customJobs", "*", "operations"), None): {"GET": "operations.list"},
    (("customJobs", "*", "operations", "*"), None): {"GET": "operations.get", "DELETE": "operations.delete"},
    (("customJobs", "*", "operations", "*"), "cancel"): {"POST": "operations.cancel"},
    (("customJobs", "*", "operations", "*"), "wait"): {"POST": "operations.wait"},
}


def route(method: str, path: str) -> Route:
    """The API method a request path names; 404 for an unknown path, 405 for a wrong verb."""
    segments = unquote(path).strip("/").split("/")

    def not_found() -> ApiFailure:
        return ApiFailure("NOT_FOUND", f"The requested URL {path} was not found on this server.")

    if len(segments) < 6 or segments[0] not in ("v1", "ui") or segments[1] != "projects" or segments[3] != "locations":
        raise not_found()
    project, location, rest = segments[2], segments[4], segments[5:]
    verb: str | None = None
    if ":" in rest[-1]:
        rest[-1], verb = rest[-1].rsplit(":", 1)
    if not project or not location or any(not s or ":" in s for s in rest):
        raise not_found()
    shape = tuple("*" if i % 2 else s for i, s in enumerate(rest))
    methods = _ROUTES.get((shape, verb))
    if methods is None or (segments[0] == "ui" and "operations" not in rest):
        raise not_found()
    rpc = methods.get(method)
    if rpc is None:
        raise ApiFailure(
            "METHOD_NOT_ALLOWED",
            f"The method {method} is not allowed for {path}; allowed: {', '.join(sorted(methods))}.",
            headers={"Allow": ", ".join(sorted(methods))},
        )
    job_id = rest[1] if len(rest) > 1 and rest[0] == "customJobs" else None
    op_id = rest[-1] if len(rest) >= 2 and rest[-2] == "operations" else None
    return Route(rpc, project, location, job_id, op_id)


@dataclass
class Answer:
    status: int
    body: Mapping[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # the body already encoded (takes precedence over `body`)

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def failure_answer(failure: ApiFailure) -> Answer:
    return Answer(failure.http_status, failure.body(), dict(failure.headers))


def query_params(rpc: str, query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise wire.invalid_argument([("query", "The query string is not valid UTF-8.")]) from None
    allowed = _METHOD_PARAMS.get(rpc, frozenset())
    for key, value in pairs:
        if key not in SYSTEM_PARAMS and key not in allowed:
            message = (f'Invalid JSON payload received. Unknown name "{key}": Cannot bind query parameter. '
                       f"Field '{key}' could not be found in request message.")
            raise wire.invalid_argument([(key, message)], prefix=message)
        params[key] = value
    for key in ("alt", "$alt"):
        if key in params and params[key].split(";")[0] not in ("json", ""):
            raise wire.invalid_argument([(key, f"Unsupported value {params[key]!r}; only json is served.")])
    return params


def enum_numbers(params: Mapping[str, str]) -> bool:
    return any("enum-encoding=int" in params.get(key, "") for key in ("$alt", "alt"))


def json_body(body: bytes) -> Any:
    """The parsed JSON body; an empty body is an empty object, as Google's front end reads it."""
    if not body.strip():
        return {}
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = f"Invalid JSON payload received. {exc}."
        raise wire.invalid_argument([("", message)], prefix=message) from None
    except RecursionError:  # nested deeper than any message: Google's front end answers 400 too
        message = "Invalid JSON payload received. Nesting too deep."
        raise wire.invalid_argument([("", message)], prefix=message) from None
    except ValueError:  # an integer beyond Python's digit limit for int()
        message = "Invalid JSON payload received. A number is too large."
        raise wire.invalid_argument([("", message)], prefix=message) from None


def page_size(params: Mapping[str, str], config: EmulatorConfig) -> int:
    """The page size a list asks for: the default for none (or 0), capped at `max_page_size`."""
    text = params.get("pageSize", params.get("page_size", ""))
    default = min(config.default_page_size, config.max_page_size)
    if not text:
        return default
    try:
        size = int(text)
    except ValueError:
        raise wire.invalid_argument([("page_size", f"Invalid value {text!r}: expected an integer.")]) from None
    if size < 0:
        raise wire.invalid_argument([("page_size", "The page size must not be negative.")])
    if size == 0:
        return default
    return min(size, config.max_page_size)
