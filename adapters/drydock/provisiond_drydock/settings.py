"""Where the drivers find provisiond: API URL, token, CA, and how long they wait.

Read from the environment (``PROVISIOND_*``), else from the ``[provisiond]`` section of Drydock's
own config file (``/etc/drydock/drydock.conf``, or the file ``PROVISIOND_DRYDOCK_CONF`` names).
A bad or missing value is refused with where it came from, the key and the reason.
"""

import configparser
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

DEFAULT_CONF = '/etc/drydock/drydock.conf'
SECTION = 'provisiond'

# Minutes each action may take per node before Drydock's task gives up on it (Drydock's own
# defaults: drydock_timeout 5, identify_node 10, deploy_node 45, destroy_node 30).
DEFAULT_TIMEOUTS = {
    'default': 5.0,
    'identify_node': 10.0,
    'power_cycle_node': 10.0,
    'deploy_node': 45.0,
    'destroy_node': 30.0,
}

# key -> environment variable
ENV = {
    'api_url': 'PROVISIOND_API_URL',
    'token': 'PROVISIOND_TOKEN',
    'token_file': 'PROVISIOND_TOKEN_FILE',
    'ca': 'PROVISIOND_CA',
    'poll_interval': 'PROVISIOND_POLL_INTERVAL',
    'power_poll_count': 'PROVISIOND_POWER_POLL_COUNT',
    'vnfs_map': 'PROVISIOND_VNFS_MAP',
}


class SettingsError(ValueError):
    """A setting refused: ``where: key: reason``."""


@dataclass(frozen=True)
class Settings:
    api_url: str
    token: str
    ca: Optional[str] = None
    poll_interval: float = 10.0
    power_poll_count: int = 18
    timeouts: Dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    vnfs_map: Dict[str, str] = field(default_factory=dict)

    def timeout(self, action: str) -> float:
        """Seconds one node may take in ``action``."""
        return 60.0 * self.timeouts.get(action, self.timeouts.get('default', 5.0))

    def vnfs_for(self, image: Optional[str]) -> Optional[str]:
        """The provisiond VNFS of a Drydock image name (``vnfs_map``, else the same name)."""
        if not image:
            return None
        return self.vnfs_map.get(image, image)

    @classmethod
    def load(cls, environ: Optional[Mapping[str, str]] = None) -> 'Settings':
        env = os.environ if environ is None else environ
        path = env.get('PROVISIOND_DRYDOCK_CONF', DEFAULT_CONF)
        values: Dict[str, Tuple[str, str]] = {}
        # oslo.config files repeat a key for a list ([plugins] oob_driver, once per driver):
        # not strict, or Drydock's own file would be refused. And its [DEFAULT] holds Drydock's
        # own options: a plain section here, not defaults leaking into [provisiond].
        parser = configparser.ConfigParser(interpolation=None, strict=False, default_section='\0none')
        try:
            with open(path, encoding='utf-8') as f:
                parser.read_file(f)
        except FileNotFoundError:
            if 'PROVISIOND_DRYDOCK_CONF' in env:
                raise SettingsError('%s: cannot be read: no such file (PROVISIOND_DRYDOCK_CONF)' % path)
        except (OSError, configparser.Error) as e:
            raise SettingsError('%s: cannot be read: %s' % (path, e))
        # Drydock's own [timeouts] (minutes per action; drydock_timeout for the rest) apply
        # unless [provisiond] timeout_<action> says otherwise.
        if parser.has_section('timeouts'):
            for key, value in parser.items('timeouts'):
                name = 'timeout_default' if key == 'drydock_timeout' else 'timeout_' + key
                values[name] = (value.strip(), '%s: [timeouts] %s' % (path, key))
        if parser.has_section(SECTION):
            for key, value in parser.items(SECTION):
                if key not in ENV and not key.startswith('timeout_'):
                    raise SettingsError('%s: [%s] %s: unknown key (known: %s, timeout_<action>)'
                                        % (path, SECTION, key, ', '.join(ENV)))
                values[key] = (value.strip(), '%s: [%s] %s' % (path, SECTION, key))
        for key, var in ENV.items():
            if env.get(var):
                values[key] = (env[var].strip(), 'environment %s' % var)
        return cls._parse(values, path)

    @classmethod
    def _parse(cls, values: Dict[str, Tuple[str, str]], path: str) -> 'Settings':
        def get(key):
            return values.get(key, (None, None))

        url, where = get('api_url')
        if not url:
            raise SettingsError('%s: [%s] api_url: missing (or set PROVISIOND_API_URL): '
                                'the admin API, e.g. https://master:9870/api/v1' % (path, SECTION))
        if not re.match(r'^https?://[^/\s]+(/\S*)?$', url):
            raise SettingsError('%s: %r is not an http(s) URL' % (where, url))
        url = url.rstrip('/')
        if not url.endswith('/api/v1'):
            url += '/api/v1'

        token, where = get('token')
        token_file, file_where = get('token_file')
        if not token and token_file:
            try:
                with open(token_file, encoding='utf-8') as f:
                    token = f.read().strip()
            except OSError as e:
                raise SettingsError('%s: cannot read %s: %s' % (file_where, token_file, e.strerror))
            where = file_where
        if not token:
            raise SettingsError('%s: [%s] token: missing (or token_file, PROVISIOND_TOKEN): an operator '
                                'token made with `provisiond token create drydock --role operator`'
                                % (path, SECTION))
        if re.search(r'\s', token):
            raise SettingsError('%s: a token has no white space' % where)

        ca, where = get('ca')
        if ca and not os.access(ca, os.R_OK):
            raise SettingsError('%s: %s cannot be read' % (where, ca))

        def number(key, default, kind=float):
            text, where = get(key)
            if text is None or text == '':
                return default
            try:
                v = kind(text)
            except ValueError:
                raise SettingsError('%s: %r is not a number' % (where, text))
            if v <= 0:
                raise SettingsError('%s: %r must be above 0' % (where, text))
            return v

        timeouts = dict(DEFAULT_TIMEOUTS)
        for key in values:
            if key.startswith('timeout_'):
                timeouts[key[len('timeout_'):]] = number(key, None)

        vnfs_map = {}
        text, where = get('vnfs_map')
        for pair in filter(None, (p.strip() for p in (text or '').split(','))):
            image, sep, vnfs = pair.partition('=')
            if not sep or not image.strip() or not re.match(r'^[\w.+-]+$', vnfs.strip()):
                raise SettingsError('%s: %r is not IMAGE=VNFS' % (where, pair))
            vnfs_map[image.strip()] = vnfs.strip()

        return cls(api_url=url, token=token, ca=ca or None,
                   poll_interval=number('poll_interval', 10.0),
                   power_poll_count=number('power_poll_count', 18, int),
                   timeouts=timeouts, vnfs_map=vnfs_map)
