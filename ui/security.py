"""What guards the served page: the host names it answers to, same-origin writes, and login.

The page is a local tool: by default it listens on 127.0.0.1 only. Listening there is not
enough on its own, because a web page open in the same browser can reach it:

- **DNS rebinding**: a site whose name briefly resolves to 127.0.0.1 would talk to the page
  under its own name. :class:`RequestGuard` answers only requests whose ``Host`` is a name
  this server is known by (:func:`host_policy`): on a loopback bind, ``localhost``,
  ``127.0.0.1``, ``[::1]`` and the ``--host`` given; any other is refused (400).
- **Cross-site requests**: a site may send a form (a file upload, an API call) to
  ``http://127.0.0.1:7860``. A request that carries an ``Origin`` other than the page's own
  (or, for a write without ``Origin``, such a ``Referer``) is refused (403), uploads
  included. Clients that are not browsers send neither and are let through.
- **Password guessing**: with ``--auth``, :class:`LoginThrottle` checks each attempt; after
  a few failures for a user name every further attempt for it waits, longer and longer
  (capped), one at a time; a success resets the count.

The guard is installed as middleware of the FastAPI app Gradio builds in ``launch`` (its
``app_kwargs`` reach FastAPI's constructor), so it sees every route, Gradio's own included.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # every interface: the names are not known
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Login: attempts free of delay, the first delay, its cap, and when failures are forgotten.
FREE_ATTEMPTS = 3
FIRST_DELAY_S = 0.5  # doubles with every further failure
MAX_DELAY_S = 10.0
FORGET_AFTER_S = 15 * 60
UNKNOWN_USER = ""  # every name that is not an account shares one failure count


# --------------------------------------------------------------------------- host names


@dataclass
class HostPolicy:
    """The host names the server answers to.

    Attributes:
        names: Host names (lower case, without port or brackets).
        any_ip: Also any IP address (a wildcard bind: a rebinding attack always uses a
            name, never an address).
    """

    names: set[str] = field(default_factory=set)
    any_ip: bool = False

    def allows(self, host: str) -> bool:
        """Whether ``host`` (a Host header's name, see :func:`split_host`) is ours."""
        if host in self.names:
            return True
        return self.any_ip and _is_ip(host)

    def add(self, name: str | None) -> None:
        """Answer to ``name`` too (e.g. the share link's host, once it is known)."""
        if name:
            self.names.add(name.lower().rstrip("."))


def host_policy(bind: str, extra: Iterable[str] = ()) -> HostPolicy:
    """The host names a server bound to ``bind`` answers to.

    Args:
        bind: The interface the server listens on (``--host``).
        extra: More names the operator allows (``--allow-host``), e.g. a proxy's.

    Returns:
        Loopback names, ``bind`` and ``extra``; on a wildcard bind (0.0.0.0, ::) also this
        machine's name and any IP address.
    """
    policy = HostPolicy(set(LOOPBACK_HOSTS))
    for name in (bind, *extra):
        policy.add(split_host(name)[0] if name.startswith("[") else name)
    if bind in WILDCARD_BINDS:
        policy.any_ip = True
        machine = socket.gethostname()
        policy.add(machine)
        policy.add(machine.split(".")[0] + ".local")
    policy.names.discard("")
    return policy


def split_host(header: str) -> tuple[str, int | None]:
    """A Host header (or a URL's netloc) as (name, port): lower case, no brackets.

    An unreadable header gives ("", None), which no policy allows.
    """
    text = header.strip().lower()
    if text.startswith("["):
        name, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            return "", None
    elif text.count(":") == 1:
        name, _, port_text = text.partition(":")
    else:
        name, port_text = text, ""
    if port_text and not port_text.isdigit():
        return "", None
    return name.rstrip("."), int(port_text) if port_text else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- the guard


class RequestGuard:
    """ASGI middleware: refuse unknown Host names and requests from another origin.

    Args:
        app: The application it guards.
        policy: The host names to answer to.
    """

    def __init__(self, app: ASGIApp, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem, status = refusal(scope, self.policy)
        if not problem:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await WebSocketClose(code=1008, reason=problem)(scope, receive, send)
        else:
            await PlainTextResponse(problem, status_code=status)(scope, receive, send)


def refusal(scope: Scope, policy: HostPolicy) -> tuple[str, int]:
    """Why a request is refused and its status (("", 200) when it is not)."""
    headers = Headers(scope=scope)
    host_header = headers.get("host", "")
    host, _ = split_host(host_header)
    if not policy.allows(host):
        return (f"Refused: this server does not answer to the host name {host_header!r}. "
                "Open the page at the address `workbench ui` printed.", 400)
    source = headers.get("origin")
    if source is None and (scope.get("method") in WRITE_METHODS
                           or scope["type"] == "websocket"):
        source = headers.get("referer")
    if source is not None and not same_origin(source, host_header):
        return ("Refused: a request from another site or page. Only the workbench's own "
                "page may send data to it.", 403)
    return "", 200


def same_origin(source: str, host_header: str) -> bool:
    """Whether an Origin or Referer URL names the origin the request was addressed to."""
    try:
        parts = urlsplit(source)
        source_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # "null" (sandboxed frames, local files) and anything odd
    host, port = split_host(host_header)
    default = DEFAULT_PORTS[parts.scheme]  # what a URL or a Host header leaves out
    return parts.hostname.rstrip(".") == host and (source_port or default) == (port or default)


def guard_middleware(policy: HostPolicy) -> Middleware:
    """The guard, ready for FastAPI's ``middleware`` argument."""
    return Middleware(RequestGuard, policy=policy)


# --------------------------------------------------------------------------- login


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LoginThrottle:
    """Password check for Gradio's login that slows repeated failures down.

    Failures are counted per user name (names that are no account share one count). After
    :data:`FREE_ATTEMPTS` failures each attempt for that name waits before it is checked,
    :data:`FIRST_DELAY_S` doubling with every further failure up to :data:`MAX_DELAY_S`,
    the right password included (a fast answer would tell a guesser when to stop waiting).
    Attempts for one name are checked one at a time, so guessing in parallel is no faster.
    A success resets the count; failures are forgotten after :data:`FORGET_AFTER_S`.

    Pass the bound method :meth:`check` to ``launch(auth=...)``: Gradio awaits it because
    it is a coroutine function.

    Args:
        accounts: User name -> password.
        clock: Seconds, monotonic (tests may pass their own).
    """

    def __init__(self, accounts: Mapping[str, str], *,
                 clock: Callable[[], float] = time.monotonic):
        self.accounts = dict(accounts)
        self.clock = clock
        self.failures: dict[str, _Failures] = {}

    def delay(self, count: int) -> float:
        """Seconds an attempt waits after ``count`` failures."""
        if count < FREE_ATTEMPTS:
            return 0.0
        return min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (count - FREE_ATTEMPTS))

    async def check(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s, after the wait earlier failures earned."""
        key = username if username in self.accounts else UNKNOWN_USER
        state = self.failures.setdefault(key, _Failures())
        async with state.lock:
            if state.count and self.clock() - state.last > FORGET_AFTER_S:
                state.count = 0
            await asyncio.sleep(self.delay(state.count))
            expected = self.accounts.get(username)
            ok = expected is not None and hmac.compare_digest(
                password.encode("utf-8"), expected.encode("utf-8"))
            state.count = 0 if ok else state.count + 1
            state.last = self.clock()
        return ok
