"""python-telegram-bot's HTTP transport on aiohttp (PTB's documented ``BaseRequest`` interface).

PTB builds every Bot API call and parses every answer itself; this class only moves the bytes.
It replaces PTB's default httpx transport because the server already runs on aiohttp, and
httpx costs about a millisecond of CPU per call, which the webhook cannot afford
(``bench/webhook.py``). Parameters go as a JSON body, files as ``multipart/form-data``, as
the Bot API accepts both.
"""

from __future__ import annotations

import json

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """One pooled aiohttp client session for the Bot API."""

    def __init__(self, *, pool_size: int = 64, read_timeout: float | None = 5.0,
                 connect_timeout: float | None = 5.0) -> None:
        self._pool_size = pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The read timeout used when a call gives none."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the client session (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        """Close the client session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one Bot API call; (HTTP status, body). PTB interprets both.

        Connect and read timeouts apply; aiohttp has no separate write or pool timeout, so
        those two are not used.
        """
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=_seconds(connect_timeout, self._connect_timeout),
            sock_read=_seconds(read_timeout, self._read_timeout))
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] = {}
        if request_data is not None and request_data.contains_files:
            body = aiohttp.FormData(request_data.json_parameters)
            for name, (filename, content, mimetype) in request_data.multipart_data.items():
                body.add_field(name, content, filename=filename, content_type=mimetype)
        elif request_data is not None:
            body = json.dumps(request_data.parameters).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(method, url, data=body, headers=headers,
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _seconds(given: object, default: float | None) -> float | None:
    """A timeout PTB passed for one call, or ours when it passed none (``DEFAULT_NONE``)."""
    if given is BaseRequest.DEFAULT_NONE or not isinstance(given, int | float | None):
        return default
    return given
