"""The node driver: Drydock's node actions through provisiond.

identify_node matches a node by hardware address; deploy_node is provisiond's deploy task (the
node's VNFS set, PXE, power cycle, followed until ready on it); destroy_node powers the node off
(releasing its allocation if it has one); interrogate_node reports its state, verdict and power.
The actions a stateless PXE-booted cluster has no use for (hardware, networking, storage and
platform configuration, templates, boot media) succeed with a status message saying so.
"""

import urllib.parse
from typing import Any, Dict, Optional

from . import fields
from .client import ApiError
from .driver import ProvisiondDriverMixin, last_message, note
from .interface import NodeDriverBase
from .resolve import find_node, oob_parameters
from .settings import Settings

# What provisiond does instead, for each action it has no use for.
NOTHING_TO_DO = {
    fields.CREATE_NETWORK_TEMPLATE: 'the provisioning network is served by provisiond\'s own DHCP',
    fields.CREATE_STORAGE_TEMPLATE: 'nodes run their VNFS from memory',
    fields.CREATE_BOOT_MEDIA: 'provisiond serves iPXE, the stage-1 and the VNFS images itself',
    fields.CONFIGURE_USER_CREDENTIALS: 'credentials go into the VNFS or its nodescripts',
    fields.CONFIGURE_NODE_PROVISIONER: 'provisiond needs no per-site provisioner setup',
    fields.PREPARE_HARDWARE_CONFIG: 'hardware is not configured through provisiond',
    fields.CONFIGURE_HARDWARE: 'hardware is not configured through provisiond',
    fields.APPLY_NODE_NETWORKING: 'networking is applied by the VNFS\'s nodescripts at boot',
    fields.APPLY_NODE_STORAGE: 'nodes run their VNFS from memory',
    fields.APPLY_NODE_PLATFORM: 'the platform is the VNFS, chosen by deploy_node',
}


class ProvisiondNodeDriver(ProvisiondDriverMixin, NodeDriverBase):
    """Drydock node driver backed by provisiond."""

    driver_name = 'provisiond_node'
    driver_key = 'provisiond_node'
    driver_desc = 'provisiond node driver'

    action_map = dict(
        {a: '_nothing_to_do' for a in NOTHING_TO_DO},
        **{
            fields.VALIDATE_NODE_SERVICES: 'validate_node_services',
            fields.IDENTIFY_NODE: 'identify_node',
            fields.INTERROGATE_NODE: 'interrogate_node',
            fields.DEPLOY_NODE: 'deploy_node',
            fields.DESTROY_NODE: 'destroy_node',
        })
    site_actions = (
        fields.VALIDATE_NODE_SERVICES, fields.CREATE_NETWORK_TEMPLATE, fields.CREATE_STORAGE_TEMPLATE,
        fields.CREATE_BOOT_MEDIA, fields.CONFIGURE_USER_CREDENTIALS, fields.CONFIGURE_NODE_PROVISIONER,
        fields.PREPARE_HARDWARE_CONFIG,
    )

    def __init__(self, orchestrator=None, state_manager=None, settings: Optional[Settings] = None, **kwargs):
        super().__init__(orchestrator=orchestrator, state_manager=state_manager, **kwargs)
        self._init_provisiond(settings)

    def _nothing_to_do(self, task: Any, node: Any) -> None:
        why = NOTHING_TO_DO[task.action]
        msg = 'provisiond has no use for %s: %s.' % (task.action, why)
        if node is None:
            note(task, msg, str(task.get_id()), ctx_type='task')
            task.success()
        else:
            note(task, msg, node.name)
            task.success(focus=node.name)

    def validate_node_services(self, task: Any, node: Any) -> None:
        self._validate_services(task, node)

    def identify_node(self, task: Any, node: Any) -> None:
        pn = find_node(self.client, node)
        note(task, 'Node %s identified as provisiond node %s (%s).' % (node.name, pn['name'], pn['nodeid']), node.name)
        task.success(focus=node.name)

    def interrogate_node(self, task: Any, node: Any) -> None:
        pn = self.client.node(find_node(self.client, node)['name'])
        verdict = pn.get('verdict') or {}
        text = 'provisiond node %s: state %s, verdict %s%s, vnfs %s, booted %s, owner %s' % (
            pn['name'], pn.get('state') or 'never seen', verdict.get('verdict'),
            ' (%s)' % verdict['reason'] if verdict.get('reason') else '', pn.get('vnfs') or '-',
            pn.get('bootVnfs') or '-', pn.get('owner') or '-')
        try:
            p = self.client.power_state(pn['name'])
            text += ', power %s (%s)' % (p.get('state'), p.get('driver'))
        except ApiError as e:
            text += ', power unknown (%s)' % e
        note(task, text + '.', node.name)
        task.success(focus=node.name)

    def deploy_node(self, task: Any, node: Any) -> None:
        """provisiond's deploy task with the node's platform image as the VNFS, followed until the
        node is ready on it; each phase it reaches is a status message."""
        vnfs = oob_parameters(node).get('vnfs') or self.settings.vnfs_for(getattr(node, 'image', None))
        if not vnfs:
            note(task, 'Node has no platform image: set platform.image (the provisiond VNFS to deploy).',
                 node.name, error=True)
            task.failure(focus=node.name)
            return
        pn = find_node(self.client, node)
        name = pn['name']
        note(task, 'Deploying VNFS %s on provisiond node %s.' % (vnfs, name), node.name)
        phases = []

        def progress(t: Dict[str, Any]) -> None:
            part = next((p for p in t.get('nodes', []) if p.get('node') == name), {})
            phase = part.get('phase')
            if phase and phase not in phases:
                phases.append(phase)
                note(task, 'provisiond deploy %s: phase %s.' % (t['id'], phase), node.name)

        # provisiond's own deadline comes first, so its task ends with the reason (last phase).
        timeout = max(1, int(self.settings.timeout(task.action) * 0.9))
        part = self._node_task(task, node, name, 'deploy', {'vnfs': vnfs, 'timeout': timeout}, progress)
        if part.get('result') == 'success':
            note(task, 'Node deployed: %s.' % last_message(part), node.name)
            task.success(focus=node.name)
        else:
            note(task, 'Node deploy failed: %s' % last_message(part), node.name, error=True)
            task.failure(focus=node.name)

    def destroy_node(self, task: Any, node: Any) -> None:
        """Power off; a node allocated to an owner is released (which powers it off)."""
        pn = find_node(self.client, node)
        name = pn['name']
        if pn.get('owner'):
            a = self.client.request('DELETE', '/allocations/' + urllib.parse.quote(name, safe=''))
            note(task, 'Released provisiond node %s from %s.' % (name, pn['owner']), node.name)
            if a.get('task'):
                done = self.client.wait_task(self.client.task(a['task']), self.settings.timeout(task.action))
                part = next((p for p in done.get('nodes', []) if p.get('node') == name), {})
            else:
                part = {'result': 'success', 'messages': [{'message': 'kept running'}]}
        else:
            part = self._node_task(task, node, name, 'power', {'action': 'off'})
        if part.get('result') == 'success':
            note(task, 'Node destroyed: powered off (%s).' % last_message(part), node.name)
            task.success(focus=node.name)
        else:
            note(task, 'Node destroy failed: %s' % last_message(part), node.name, error=True)
            task.failure(focus=node.name)
