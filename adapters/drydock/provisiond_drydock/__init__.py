"""Airship Drydock drivers for provisiond.

``ProvisiondOobDriver`` (``oob_types_supported = ['provisiond']``) and ``ProvisiondNodeDriver``
carry Drydock's OOB and node actions to provisiond's admin API: power, boot device, deploy,
identify and interrogate, each as a provisiond task that the driver waits for. Standard library
only. See ../README.md for installing them in Drydock (``[plugins] oob_driver`` / ``node_driver``).
"""

from .oob import ProvisiondOobDriver
from .node import ProvisiondNodeDriver
from .settings import Settings, SettingsError
from .client import ApiClient, ApiError

__all__ = [
    'ProvisiondOobDriver',
    'ProvisiondNodeDriver',
    'Settings',
    'SettingsError',
    'ApiClient',
    'ApiError',
]
