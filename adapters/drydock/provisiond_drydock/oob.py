"""The OOB driver: Drydock's power and boot-device actions through provisiond's power drivers.

provisiond owns the BMCs (ipmi, redfish, exec, qemu: each node's ``power.*`` attributes); Drydock
nodes say ``oob: {type: provisiond}`` and are matched to provisiond nodes by hardware address.
"""

import time
from typing import Any, Optional

from . import fields
from .driver import ProvisiondDriverMixin, last_message, note
from .interface import OobDriverBase
from .resolve import find_node
from .settings import Settings


class ProvisiondOobDriver(ProvisiondDriverMixin, OobDriverBase):
    """Drydock OOB driver for nodes whose ``oob_type`` is ``provisiond``."""

    oob_types_supported = ['provisiond']
    driver_name = 'provisiond_oob'
    driver_key = 'provisiond_oob'
    driver_desc = 'provisiond OOB driver'

    action_map = {
        fields.VALIDATE_OOB_SERVICES: '_validate_services',
        fields.CONFIG_NODE_PXE: 'config_node_pxe',
        fields.SET_NODE_BOOT: 'set_node_boot',
        fields.POWER_OFF_NODE: 'power_off_node',
        fields.POWER_ON_NODE: 'power_on_node',
        fields.POWER_CYCLE_NODE: 'power_cycle_node',
        fields.INTERROGATE_OOB: 'interrogate_oob',
    }
    site_actions = (fields.VALIDATE_OOB_SERVICES,)

    def __init__(self, orchestrator=None, state_manager=None, settings: Optional[Settings] = None, **kwargs):
        super().__init__(orchestrator=orchestrator, state_manager=state_manager, **kwargs)
        self._init_provisiond(settings)

    def config_node_pxe(self, task: Any, node: Any) -> None:
        """provisiond answers PXE for every enabled node it knows: nothing to configure."""
        pn = find_node(self.client, node)
        if not pn.get('enabled', True):
            note(task, 'provisiond node %s is disabled: it gets no boot file (provisiond node set enabled yes %s).'
                 % (pn['name'], pn['name']), node.name, error=True)
            task.failure(focus=node.name)
            return
        note(task, 'provisiond answers PXE for %s (%s) by its hardware address: nothing to configure.'
             % (pn['name'], pn['nodeid']), node.name)
        task.success(focus=node.name)

    def set_node_boot(self, task: Any, node: Any) -> None:
        """Boot device pxe, for every boot (a provisiond node boots its VNFS over the network)."""
        pn = find_node(self.client, node)
        note(task, 'Setting node to PXE boot (provisiond node %s).' % pn['name'], node.name)
        part = self._node_task(task, node, pn['name'], 'bootdev', {'device': 'pxe', 'persistent': True})
        if part.get('result') == 'success':
            note(task, 'Set bootdev to PXE: provisiond reports "%s".' % last_message(part), node.name)
            task.success(focus=node.name)
        else:
            note(task, 'Unable to set bootdev to PXE: %s' % last_message(part), node.name, error=True)
            task.failure(focus=node.name)

    def power_on_node(self, task: Any, node: Any) -> None:
        self._power(task, node, 'on', 'on', 'Node reports power on.', 'Node failed to power on')

    def power_off_node(self, task: Any, node: Any) -> None:
        self._power(task, node, 'off', 'off', 'Node reports power off.', 'Node failed to power off')

    def power_cycle_node(self, task: Any, node: Any) -> None:
        self._power(task, node, 'cycle', 'on', 'Node power cycle complete.', 'Node failed to power cycle')

    def _power(self, task: Any, node: Any, action: str, want: str, ok: str, failed: str) -> None:
        """The power task, then the power state polled (power_poll_count x poll_interval) until
        it is ``want``, as Drydock's own OOB drivers confirm a power action."""
        pn = find_node(self.client, node)
        note(task, 'Sending power %s to provisiond node %s.' % (action, pn['name']), node.name)
        part = self._node_task(task, node, pn['name'], 'power', {'action': action})
        if part.get('result') != 'success':
            note(task, '%s: %s' % (failed, last_message(part)), node.name, error=True)
            task.failure(focus=node.name)
            return
        state = None
        for i in range(self.settings.power_poll_count):
            state = self.client.power_state(pn['name']).get('state')
            if state == want:
                note(task, ok, node.name)
                task.success(focus=node.name)
                return
            if i + 1 < self.settings.power_poll_count:
                time.sleep(self.settings.poll_interval)
        note(task, '%s: power is %s after %d checks.' % (failed, state, self.settings.power_poll_count),
             node.name, error=True)
        task.failure(focus=node.name)

    def interrogate_oob(self, task: Any, node: Any) -> None:
        pn = find_node(self.client, node)
        p = self.client.power_state(pn['name'])
        note(task, 'provisiond power driver %s of %s reports power %s.' % (p.get('driver'), pn['name'], p.get('state')),
             node.name)
        task.success(focus=node.name)
