"""
provisiond's OpenNebula provision (PM) driver: what the six action executables share.

oneprovision runs `remotes/pm/provisiond/<action> ARGS... HOST_ID HOST` through a shell, stdin
empty, and reads stdout on success; on failure it reads the message between the 8< markers on
stderr. Every action here talks to provisiond's admin API (docs/api.md); the deploy id is the
provisiond node name, and the node is allocated to the owner `<owner_prefix>:<HOST_ID>`, which every
later action checks before it touches the node.

Python 3.6 or later, standard library only (an OpenNebula front-end has python3, no pip).
"""
import configparser
import http.client
import json
import os
import re
import select
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

CONFIG_ENV = 'PROVISIOND_PM_CONFIG'
CONFIG_PATHS = ['/etc/one/provisiond.conf', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'provisiond.conf')]
SECTION = 'provisiond'
# key: (default, kind); None: required
SETTINGS = {
    'url': (None, 'url'),
    'token': ('', 'str'),
    'token_file': ('', 'path'),
    'ca': ('', 'path'),
    'owner_prefix': ('one', 'word'),
    'deploy_timeout': ('1800', 'seconds'),
    'shutdown_grace': ('120', 'seconds'),
    'power_timeout': ('300', 'seconds'),
    'poll_interval': ('5', 'seconds'),
    'request_timeout': ('30', 'seconds'),
}
SHUTDOWN_STATES = ('SHUTDOWN', 'SHUTDOWN_POWEROFF', 'UNDEPLOY')
NODE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$')


class DriverError(Exception):
    """A failure told to oneprovision: one line, context first."""


def fail(message):
    """oneprovision's error format (scripts_common's error_message), then a non-zero exit."""
    one_line = ' '.join(str(message).split())
    sys.stderr.write('ERROR MESSAGE --8<------\n%s\nERROR MESSAGE ------>8--\n' % one_line)
    sys.stderr.flush()
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Settings


def config_path():
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return explicit
    for path in CONFIG_PATHS:
        if os.path.exists(path):
            return path
    raise DriverError('no settings: none of %s exists (or set %s)' % (', '.join(CONFIG_PATHS), CONFIG_ENV))


def parse_settings(text, path):
    """The [provisiond] section of `text`, checked: a DriverError names the file, the key and the reason."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(';',))
    try:
        parser.read_string(text, source=path)
    except configparser.Error as err:
        raise DriverError('%s: %s' % (path, str(err).splitlines()[0]))
    if not parser.has_section(SECTION):
        raise DriverError('%s: no [%s] section' % (path, SECTION))
    raw = dict(parser.items(SECTION))
    for key in raw:
        if key not in SETTINGS:
            raise DriverError('%s: [%s] %s: unknown setting (known: %s)' % (path, SECTION, key, ', '.join(sorted(SETTINGS))))
    out = {}
    for key, (default, kind) in SETTINGS.items():
        value = raw.get(key, default)
        if value is None or (key == 'url' and value.strip() == ''):
            raise DriverError('%s: [%s] %s: missing (the admin API, e.g. https://master:9870)' % (path, SECTION, key))
        value = value.strip()
        if kind == 'seconds':
            try:
                number = float(value)
            except ValueError:
                number = -1
            if number <= 0:
                raise DriverError('%s: [%s] %s: %r is not a positive number of seconds' % (path, SECTION, key, value))
            value = number
        elif kind == 'url':
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ('http', 'https') or not parts.netloc:
                raise DriverError('%s: [%s] url: %r is not an http(s) URL' % (path, SECTION, value))
            value = value.rstrip('/')
            if not value.endswith('/api/v1'):
                value += '/api/v1'
        elif kind == 'word' and not re.match(r'^[\w.-]{1,64}$', value):
            raise DriverError('%s: [%s] %s: %r: expected a word (letters, digits, . _ -)' % (path, SECTION, key, value))
        out[key] = value
    if out['token_file']:
        try:
            with open(out['token_file']) as f:
                out['token'] = f.read().strip()
        except OSError as err:
            raise DriverError('%s: [%s] token_file: %s' % (path, SECTION, err))
    if not out['token']:
        raise DriverError('%s: [%s] token: missing (an operator token: provisiond token create one --role operator)' % (path, SECTION))
    if out['ca'] and not os.path.exists(out['ca']):
        raise DriverError('%s: [%s] ca: %s does not exist' % (path, SECTION, out['ca']))
    return out


def load_settings():
    path = config_path()
    try:
        with open(path) as f:
            text = f.read()
    except OSError as err:
        raise DriverError('reading settings %s: %s' % (path, err))
    return parse_settings(text, path)


# ---------------------------------------------------------------------------------------------
# The admin API


class ApiError(DriverError):
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


# ---------------------------------------------------------------------------------------------
# Arguments and the deployment file


def host_args(args, fixed):
    """(HOST_ID, HOST): the two arguments oneprovision appends after the `fixed` ones."""
    if len(args) < fixed + 2:
        raise DriverError('expected %d argument(s) and HOST_ID HOST, got %r' % (fixed, ' '.join(args)))
    return args[-2], args[-1]


def owner_of(settings, host_id):
    if not re.match(r'^\S{1,100}$', host_id or ''):
        raise DriverError('HOST_ID %r: expected a host id' % (host_id,))
    return '%s:%s' % (settings['owner_prefix'], host_id)


def read_deployment(path):
    """The deployment XML: from stdin when it comes there (written to `path`), else the file `path`."""
    data = ''
    if not sys.stdin.isatty():
        # oneprovision gives an empty stdin (EOF at once); the driver document sends the XML there.
        # A stdin left open and silent is not waited for when the file is there already.
        wait = 2.0 if os.path.exists(path) else None
        ready = select.select([sys.stdin], [], [], wait)[0]
        if ready:
            data = sys.stdin.read()
    if data.strip():
        try:
            with open(path, 'w') as f:
                f.write(data)
        except OSError as err:
            raise DriverError('writing the deployment file %s: %s' % (path, err))
        return data
    try:
        with open(path) as f:
            return f.read()
    except OSError as err:
        raise DriverError('reading the deployment file %s: %s (nothing came on stdin)' % (path, err))


def parse_deployment(text, path):
    """TEMPLATE/PROVISION/{GROUP,IMAGE,HOSTNAME} (and NAME) of a deployment file (a HOST document)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise DriverError('deployment file %s: not XML: %s' % (path, err))
    if root.tag != 'HOST':
        raise DriverError('deployment file %s: the root is <%s>, expected <HOST>' % (path, root.tag))

    def field(key):
        value = root.findtext('TEMPLATE/PROVISION/' + key)
        return value.strip() if value and value.strip() else None

    out = {'name': (root.findtext('NAME') or '').strip(), 'group': field('GROUP'), 'image': field('IMAGE'), 'hostname': field('HOSTNAME')}
    for key in ('group', 'image'):
        if out[key] is None:
            raise DriverError('deployment file %s: TEMPLATE/PROVISION/%s missing (provision: {driver: provisiond, %s: ...} in the provision YAML)' % (path, key.upper(), key))
    return out


# ---------------------------------------------------------------------------------------------
# The entry point of each executable


def run(action, argv=None):
    from provisiond_actions import ACTIONS  # the six actions, beside this module

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
        out = ACTIONS[action](Api(settings), settings, args)
    except DriverError as err:
        fail('%s: %s' % (action, err))
    except KeyboardInterrupt:
        fail('%s: interrupted' % action)
    except Exception as err:  # never a traceback for oneprovision to show
        if os.environ.get('PROVISIOND_PM_DEBUG'):
            raise
        fail('%s: unexpected %s: %s' % (action, type(err).__name__, err))
    if out:
        sys.stdout.write(out + '\n')
    sys.exit(0)
