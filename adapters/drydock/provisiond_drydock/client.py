"""A small client of provisiond's admin API (docs/api.md): Bearer token, JSON, tasks."""

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional

from .settings import Settings

FINISHED = ('complete', 'terminated')


class ApiError(Exception):
    """An answer other than 2xx (``status``, provisiond's ``code`` and message), or no answer
    at all (``status`` 0, code ``unreachable``)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


class ApiClient:
    def __init__(self, settings: Settings, request_timeout: float = 30.0):
        self.settings = settings
        self.request_timeout = request_timeout
        self._ssl = ssl.create_default_context(cafile=settings.ca) if settings.api_url.startswith('https:') else None

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None,
                idempotency_key: Optional[str] = None) -> Any:
        """The decoded JSON answer (None for 204); raises ApiError."""
        headers = {'Authorization': 'Bearer ' + self.settings.token, 'Accept': 'application/json'}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers['Content-Type'] = 'application/json'
        if idempotency_key:
            headers['Idempotency-Key'] = idempotency_key
        url = self.settings.api_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.request_timeout, context=self._ssl) as res:
                raw = res.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)['error']
                code, message = err.get('code', 'error'), err.get('message', '')
            except (ValueError, KeyError, TypeError):
                code, message = 'error', raw.decode(errors='replace')[:200]
            raise ApiError(e.code, code, '%s %s: %d %s' % (method, path, e.code, message)) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, 'reason', e)
            raise ApiError(0, 'unreachable', 'provisiond API %s: %s' % (self.settings.api_url, reason)) from None

    # --- resources ---

    def whoami(self) -> Dict[str, Any]:
        return self.request('GET', '/whoami')

    def node(self, name_or_mac: str) -> Dict[str, Any]:
        return self.request('GET', '/nodes/' + urllib.parse.quote(name_or_mac, safe=''))

    def nodes(self, pattern: str) -> list:
        return self.request('GET', '/nodes?' + urllib.parse.urlencode({'pattern': pattern}))['items']

    def power_state(self, node: str) -> Dict[str, Any]:
        return self.request('GET', '/nodes/%s/power' % urllib.parse.quote(node, safe=''))

    def node_task(self, node: str, verb: str, body: Dict[str, Any], key: Optional[str] = None) -> Dict[str, Any]:
        """POST /nodes/{node}/{verb}: power, bootdev, deploy; the task it started."""
        return self.request('POST', '/nodes/%s/%s' % (urllib.parse.quote(node, safe=''), verb), body, key)

    def task(self, task_id: str) -> Dict[str, Any]:
        return self.request('GET', '/tasks/' + urllib.parse.quote(task_id, safe=''))

    def wait_task(self, task: Dict[str, Any], timeout: float,
                  on_change: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Follows a task until it is finished; ``on_change`` sees it each time it progressed.
        Past ``timeout`` seconds the task is cancelled and TimeoutError raised. While the daemon
        does not answer (a restart), the task is asked for again until then."""
        end = time.monotonic() + timeout
        seen = None
        interval = min(1.0, self.settings.poll_interval)
        while True:
            mark = (task.get('status'), task.get('progressAt'))
            if mark != seen:
                seen = mark
                if on_change:
                    on_change(task)
            if task.get('status') in FINISHED:
                return task
            if time.monotonic() >= end:
                try:
                    self.request('POST', '/tasks/%s/cancel' % task['id'])
                except ApiError:
                    pass
                raise TimeoutError('provisiond task %s (%s) did not finish within %ds'
                                   % (task['id'], task.get('action'), timeout))
            time.sleep(interval)
            try:
                task = self.task(task['id'])
            except ApiError as e:
                # provisiond keeps its tasks across a restart: wait for it to answer again.
                if e.status not in (0, 502, 503, 504):
                    raise
