"""
provisiond's admin API as the OpenNebula driver's actions use it: a small JSON client whose errors
are one line (ApiError), and the allocations, tasks and power actions built on it. Waits ride out a
provisiond restart (its tasks survive it) until their deadline.
"""
import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from provisiond_pm import NODE_NAME, DriverError


class ApiError(DriverError):
    """A refusal of the API (its status and error code), or no answer (status None)."""

    def __init__(self, message, status=None, code=None):
        DriverError.__init__(self, message)
        self.status = status
        self.code = code


class Api(object):
    """A small client of provisiond's admin API: JSON in and out, its one error shape turned into ApiError."""

    def __init__(self, settings):
        self.base = settings['url']
        self.token = settings['token']
        self.timeout = settings['request_timeout']
        self.context = None
        if self.base.startswith('https:'):
            self.context = ssl.create_default_context(cafile=settings['ca'] or None)

    def request(self, method, path, body=None, headers=None):
        """(status, answer, headers). ApiError on an error status or when the API cannot be reached."""
        url = self.base + path
        data = None if body is None else json.dumps(body).encode('utf-8')
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header('Authorization', 'Bearer ' + self.token)
        req.add_header('Accept', 'application/json')
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as res:
                text = res.read().decode('utf-8')
                return res.status, (json.loads(text) if text else {}), res.headers
        except urllib.error.HTTPError as err:
            raise self._refused(method, path, err)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            # Refused, reset, cut short, timed out, TLS: provisiond unreachable (or restarting).
            reason = getattr(err, 'reason', None) or err
            raise ApiError('cannot reach provisiond at %s: %s' % (self.base, reason))

    def _refused(self, method, path, err):
        code, message = None, ''
        try:
            answer = json.loads(err.read().decode('utf-8'))
            code = answer['error']['code']
            message = answer['error']['message']
        except Exception:
            message = err.reason
        what = '%s %s%s' % (method, urllib.parse.urlsplit(self.base).path, path.split('?')[0])
        if err.code == 401:
            return ApiError('provisiond refused the token (%s: %s): check token in the driver settings' % (what, message), 401, code)
        if err.code == 403:
            return ApiError('the token may not do this (%s: %s): the driver needs an operator token' % (what, message), 403, code)
        return ApiError('%s: %s %s: %s' % (what, err.code, code or '', message), err.code, code)

    def get(self, path):
        return self.request('GET', path)[1]

    def post(self, path, body, headers=None):
        return self.request('POST', path, body, headers)

    def delete(self, path):
        return self.request('DELETE', path)[1]


def node_path(node):
    if not NODE_NAME.match(node or ''):
        raise DriverError('deploy id %r is not a provisiond node name' % (node,))
    return urllib.parse.quote(node, safe='')


# ---------------------------------------------------------------------------------------------
# Tasks, allocations and power, as the actions use them


def wait_task(api, settings, task_id, timeout, what):
    """Follows a task until it ends; the node's last error message when it did not succeed."""
    deadline = time.time() + timeout
    last_error = None
    while True:
        try:
            task = api.get('/tasks/' + urllib.parse.quote(task_id, safe=''))
            if task['status'] in ('complete', 'terminated'):
                if task['status'] == 'complete' and task['result'] == 'success':
                    return task
                raise DriverError('%s: task %s %s %s: %s' % (what, task_id, task['status'], task['result'], task_failure(task)))
        except ApiError as err:
            # provisiond restarting (its tasks survive it): keep asking until the deadline.
            if err.status is not None and err.status not in (502, 503, 504):
                raise
            last_error = err
        if time.time() >= deadline:
            if last_error is not None:
                raise DriverError('%s: task %s: %s' % (what, task_id, last_error))
            try:
                api.post('/tasks/%s/cancel' % urllib.parse.quote(task_id, safe=''), {})
            except DriverError:
                pass
            raise DriverError('%s: task %s did not end within %d s (cancelled)' % (what, task_id, timeout))
        time.sleep(min(settings['poll_interval'], max(0.1, deadline - time.time())))


def task_failure(task):
    for n in task.get('nodes', []):
        errors = [m['message'] for m in n.get('messages', []) if m.get('error')]
        if errors:
            return errors[-1]
    errors = [m['message'] for m in task.get('messages', []) if m.get('error')]
    return errors[-1] if errors else 'no message'


def task_of(reply):
    return reply[1]['id']


def allocation(api, node):
    """The node's allocation, or None when it is not allocated."""
    try:
        return api.get('/allocations/' + node_path(node))
    except ApiError as err:
        if err.status == 404 and err.code == 'not_found':
            # Not allocated, or no such node: tell them apart.
            api.get('/nodes/' + node_path(node))
            return None
        raise


def owned(api, node, owner):
    """The node's allocation, checked to be `owner`'s: never act on somebody else's node."""
    a = allocation(api, node)
    if a is None:
        raise DriverError('node %s is not allocated (it was released): nothing to do for %s' % (node, owner))
    if a['owner'] != owner:
        raise DriverError('node %s is allocated to %s, not to %s: refusing to touch it' % (node, a['owner'], owner))
    return a


def power(api, settings, node, action):
    reply = api.post('/nodes/%s/power' % node_path(node), {'action': action})
    return wait_task(api, settings, task_of(reply), settings['power_timeout'], 'power %s of %s' % (action, node))


def power_state(api, node):
    try:
        return api.get('/nodes/%s/power' % node_path(node))['state']
    except ApiError as err:
        if err.status in (409, 502):
            return 'unknown'
        raise


def orderly_off(api, settings, node):
    """ACPI shutdown, then up to shutdown_grace seconds for the node to power off. Whether it did."""
    try:
        power(api, settings, node, 'shutdown')
    except DriverError:
        return False  # no ACPI through this node's power driver: the caller goes on the hard way
    deadline = time.time() + settings['shutdown_grace']
    while True:
        if power_state(api, node) == 'off':
            return True
        if time.time() >= deadline:
            return False
        time.sleep(min(settings['poll_interval'], max(0.1, deadline - time.time())))


def reload(api, settings, node, what):
    """provisiond's reload: boot device pxe, power on (or cycle), followed until ready on its VNFS."""
    timeout = settings['deploy_timeout']
    reply = api.post('/nodes/%s/reload' % node_path(node), {'timeout': timeout})
    wait_task(api, settings, task_of(reply), timeout + 60, what)


def release(api, settings, node):
    """Ends the allocation; provisiond powers the node off (a task, followed here)."""
    answer = api.delete('/allocations/' + node_path(node))
    if answer.get('task'):
        wait_task(api, settings, answer['task'], settings['power_timeout'], 'released %s, but powering it off' % node)
