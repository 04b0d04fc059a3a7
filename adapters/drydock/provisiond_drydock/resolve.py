"""Which provisiond node a Drydock node is: by its hardware address(es), as provisiond knows nodes.

In order: ``oob_parameters['node']`` (a provisiond node name, when the admin says so), the node's
``boot_mac`` and ``oob_parameters['macs']`` (a list, or comma-separated), else Drydock's node name.
"""

import re
from typing import Any, Dict, List

from .client import ApiClient, ApiError

MAC = re.compile(r'^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$', re.I)


class NotIdentified(Exception):
    """The Drydock node matches no provisiond node, or several."""


def oob_parameters(node: Any) -> Dict[str, Any]:
    params = getattr(node, 'oob_parameters', None)
    return params if isinstance(params, dict) else {}


def macs_of(node: Any) -> List[str]:
    """The node's hardware addresses, lowercase with colons; a malformed one is NotIdentified."""
    given: List[str] = []
    if getattr(node, 'boot_mac', None):
        given.append(node.boot_mac)
    extra = oob_parameters(node).get('macs') or []
    given.extend(extra.split(',') if isinstance(extra, str) else extra)
    macs = []
    for m in (str(x).strip() for x in given):
        if not m:
            continue
        if not MAC.match(m):
            raise NotIdentified('%r is not a hardware address' % m)
        hexa = re.sub(r'[^0-9a-f]', '', m.lower())
        mac = ':'.join(hexa[i:i + 2] for i in range(0, 12, 2))
        if mac not in macs:
            macs.append(mac)
    return macs


def find_node(client: ApiClient, node: Any) -> Dict[str, Any]:
    """The provisiond node (as ``GET /nodes`` lists it) of a Drydock node."""
    explicit = oob_parameters(node).get('node')
    if explicit:
        try:
            return client.node(str(explicit))
        except ApiError as e:
            if e.status == 404:
                raise NotIdentified('oob_parameters.node %r: provisiond has no such node' % explicit) from None
            raise
    macs = macs_of(node)
    if macs:
        found = client.nodes(','.join(macs))
        names = sorted({n['name'] for n in found})
        if len(names) == 1:
            return found[0]
        if not names:
            raise NotIdentified('no provisiond node has hardware address %s (register it: provisiond node add %s)'
                                % (', '.join(macs), macs[0]))
        raise NotIdentified('hardware addresses %s belong to several provisiond nodes: %s'
                            % (', '.join(macs), ', '.join(names)))
    try:
        return client.node(node.name)
    except ApiError as e:
        if e.status == 404:
            raise NotIdentified('node has no boot_mac and provisiond has no node named %r' % node.name) from None
        raise
