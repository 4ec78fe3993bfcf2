"""One JSON call to a JupyterHub's REST API (or a user's server, or a service, through its proxy)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def call(base: str, method: str, path: str, token: str | None = None, body=None,
         timeout: float = 120) -> tuple[int, object]:
    """(status, the reply as JSON, or as text when it is not); (0, "not listening") when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            text, code = r.read().decode(), r.status
    except urllib.error.HTTPError as err:
        text, code = err.read().decode(errors="replace"), err.code
    except (urllib.error.URLError, ConnectionError):
        return 0, "not listening"
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text
