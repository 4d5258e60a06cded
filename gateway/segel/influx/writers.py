"""Writers that send line-protocol batches to InfluxDB and say exactly what happened.

- `V1Writer`: InfluxDB 1.x `/write` over plain HTTP (Debian's and Raspberry Pi OS's 1.6/1.7,
  which have no v2 API), with optional basic auth and `CREATE DATABASE` on start.
- `V2Writer`: InfluxDB 2.x / 3.x / Cloud / 1.8+ (and VictoriaMetrics) through influxdb-client's
  v2 write API used synchronously: a call returns only when the server answered, and raises on
  an error (the default batching write_api would swallow errors and flush in the background).

A writer raises `WriteError(retryable=...)`: retryable errors (server down, 5xx, 429, auth or
a missing database an operator must fix) keep the batch; non-retryable ones (400: bad line or
field type conflict, 413: too large) make the outbox bisect the batch to find the bad line.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

log = logging.getLogger("segel.influx.writers")


class WriteError(Exception):
    def __init__(self, message: str, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class Writer(Protocol):
    name: str

    def write(self, lines: list[str]) -> None:
        """Write all lines or raise WriteError."""

    def close(self) -> None: ...


def _classify(status: int, body: str, where: str) -> WriteError:
    body = body.strip()[:300]
    if status in (400, 413, 422):
        return WriteError(f"{where} refused the batch ({status}): {body}", retryable=False, status=status)
    if status in (401, 403):
        return WriteError(f"{where} refused the credentials ({status}): check the username/password or token",
                          retryable=True, status=status)
    if status == 404:
        return WriteError(f"{where} answered 404: {body or 'not found'} (database/bucket missing, or a 1.x "
                          "server below 1.8 used with kind = \"v2\")", retryable=True, status=status)
    return WriteError(f"{where} failed ({status}): {body}", retryable=True, status=status)


class V1Writer:
    """InfluxDB 1.x `POST /write?db=&rp=&precision=ns`."""

    def __init__(self, url: str, database: str, retention_policy: str | None = None, username: str | None = None,
                 password: str | None = None, timeout_s: float = 10.0, create_database: bool = False) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.rp = retention_policy
        self.timeout_s = timeout_s
        self.name = f"InfluxDB 1.x {self.url} db={database}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._create = create_database
        self._created = False

    def __repr__(self) -> str:
        return f"V1Writer({self.name})"

    def _post(self, path: str, params: dict[str, str], data: bytes) -> None:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=data, method="POST", headers=self._headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                r.read()
        except urllib.error.HTTPError as e:
            raise _classify(e.code, e.read().decode("utf-8", "replace"), self.name) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise WriteError(f"{self.name} unreachable: {reason}", retryable=True) from None

    def ensure_database(self) -> None:
        self._post("/query", {"q": f'CREATE DATABASE "{self.database}"'}, b"")
        self._created = True

    def write(self, lines: list[str]) -> None:
        if self._create and not self._created:
            self.ensure_database()
        params = {"db": self.database, "precision": "ns"}
        if self.rp:
            params["rp"] = self.rp
        self._post("/write", params, "\n".join(lines).encode())

    def close(self) -> None:
        pass


class V2Writer:
    """influxdb-client v2 write API, synchronous. For 1.8+ use token "user:password", bucket "db/rp"."""

    def __init__(self, url: str, bucket: str, org: str = "-", token: str | None = None, timeout_s: float = 10.0,
                 verify_ssl: bool = True, ca_file: str | None = None) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org
        self.name = f"InfluxDB v2 API {self.url} bucket={bucket}"
        kw: dict = {"verify_ssl": verify_ssl}
        if ca_file:
            kw["ssl_ca_cert"] = ca_file
        self._client = InfluxDBClient(url=self.url, token=token or "", org=org, timeout=int(timeout_s * 1000), **kw)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def __repr__(self) -> str:
        return f"V2Writer({self.name})"

    def write(self, lines: list[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(bucket=self.bucket, org=self.org, record="\n".join(lines),
                            write_precision=WritePrecision.NS)  # type: ignore[arg-type]  # an enum of str
        except ApiException as e:
            raise _classify(int(e.status or 0), str(e.body or e.reason or ""), self.name) from None
        except Exception as e:  # urllib3 connection errors and timeouts
            raise WriteError(f"{self.name} unreachable: {type(e).__name__}: {e}", retryable=True) from None

    def close(self) -> None:
        self._api.close()
        self._client.close()
