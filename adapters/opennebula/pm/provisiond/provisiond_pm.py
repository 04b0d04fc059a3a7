"""
provisiond's OpenNebula provision (PM) driver: what the six action executables share (settings,
the error format, the arguments and the deployment file, the entry point). The API client is
provisiond_api.py, the actions provisiond_actions.py.

oneprovision runs `remotes/pm/provisiond/<action> ARGS... HOST_ID HOST` through a shell, stdin
empty, and reads stdout on success; on failure it reads the message between the 8< markers on
stderr. Every action here talks to provisiond's admin API (docs/api.md); the deploy id is the
provisiond node name, and the node is allocated to the owner `<owner_prefix>:<HOST_ID>`, which every
later action checks before it touches the node.

Python 3.6 or later, standard library only (an OpenNebula front-end has python3, no pip).
"""
import configparser
import os
import re
import select
import sys
import urllib.parse
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
    # Beside this module: the API client and the six actions (they import this module).
    from provisiond_actions import ACTIONS
    from provisiond_api import Api

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
