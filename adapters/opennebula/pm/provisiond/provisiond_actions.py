"""
The six actions of provisiond's OpenNebula provision driver. Each takes the API client, the
settings and the arguments oneprovision passed (HOST_ID HOST last), and returns what goes on
stdout (the deploy id, the poll pairs) or None; a failure raises DriverError.
"""
import time
import urllib.parse

from provisiond_api import ApiError, allocation, node_path, orderly_off, owned, power, power_state, release, reload, wait_task
from provisiond_pm import SHUTDOWN_STATES, DriverError, host_args, owner_of, parse_deployment, read_deployment


def deploy(api, settings, args):
    """
    `deploy DEPLOYMENT_FILE TODO HOST_ID HOST` (or, resumed, `DEPLOYMENT_FILE HOST HOST_ID HOST`):
    allocates a node of TEMPLATE/PROVISION/GROUP to this host, deploys IMAGE on it and waits until it
    is ready. Prints the deploy id (the node's name) and nothing else.
    """
    host_id, _host = host_args(args, 1)
    owner = owner_of(settings, host_id)
    prov = parse_deployment(read_deployment(args[0]), args[0])
    timeout = settings['deploy_timeout']
    mine = api.get('/allocations?owner=' + urllib.parse.quote(owner, safe=''))['items']
    if mine:
        # A deploy retried after oneprovision gave up waiting (or died): the node it already has.
        node = mine[0]['node']
        task_id = running_deploy(api, node) or redeploy(api, node, prov['image'], timeout)
    else:
        body = {'group': prov['group'], 'vnfs': prov['image'], 'owner': owner, 'timeout': timeout}
        if prov['hostname']:
            body['hostname'] = prov['hostname']
        answer = allocate(api, settings, body, owner)
        node, task_id = answer['node'], answer['task']
    if task_id is not None:
        try:
            wait_task(api, settings, task_id, timeout + 60, 'deploy of %s on %s' % (prov['image'], node))
        except DriverError:
            # Not deployed: the node goes back to the pool (powered off), so a retry starts clean.
            try:
                release(api, settings, node)
            except DriverError:
                pass
            raise
    return node


def allocate(api, settings, body, owner):
    """
    POST /allocations, tried again when provisiond could not be reached or answer (restarting): one
    Idempotency-Key for the tries of this deploy, made from the host, so that a POST whose answer was
    lost does not allocate a second node. (A deploy run again by oneprovision finds the host's node
    by its owner before it gets here; the key is not kept across runs because provisiond would
    answer a key reused after a failed deploy gave its node back with that deploy's old task.)
    """
    key = 'opennebula-%s-deploy-%d' % (owner, int(time.time() * 1000))
    for attempt in range(3):
        try:
            answer = api.post('/allocations', body, {'Idempotency-Key': key})[1]
            break
        except ApiError as err:
            if attempt == 2 or (err.status is not None and err.status not in (502, 503, 504)):
                raise
            time.sleep(settings['poll_interval'])
    if answer['owner'] != owner:
        raise DriverError('provisiond answered Idempotency-Key %s with node %s of %s, not of %s' % (key, answer['node'], answer['owner'], owner))
    return answer


def running_deploy(api, node):
    """The unfinished deploy or reload task of `node`, if any."""
    for task in api.get('/tasks?unfinished=true&limit=500')['items']:
        if task['action'] in ('deploy', 'reload') and any(n['node'] == node for n in task['nodes']):
            return task['id']
    return None


def redeploy(api, node, image, timeout):
    """A deploy task for a node already allocated, unless it is ready on `image` already (None then)."""
    n = api.get('/nodes/' + node_path(node))
    if n['vnfs'] == image and n['verdict']['verdict'] == 'READY':
        return None
    return api.post('/nodes/%s/deploy' % node_path(node), {'vnfs': image, 'timeout': timeout})[1]['id']


def poll(api, settings, args):
    """
    `poll DEPLOY_ID HOST HOST_ID HOST`: KEY=VALUE pairs, GUEST_IP_ADDRESSES first (oneprovision renames
    the host to its first address), then STATE (a: ready, d: powered off, e: failed or silent, -: on
    its way) and provisiond's own view of the node.
    """
    node = args[0] if args else ''
    host_id, _host = host_args(args, 2)
    a = owned(api, node, owner_of(settings, host_id))
    n = api.get('/nodes/' + node_path(node))
    address = n.get('leaseAddress') or n.get('ipaddr') or n.get('lastaddr')
    if not address:
        raise DriverError('node %s has no address yet (no DHCP lease, no fixed ipaddr, never seen)' % node)
    # The verdict with the power state (asked of the node's power driver; the node answer does not).
    v = api.get('/nodes/%s/verdict' % node_path(node))
    powered = v.get('power') or 'unknown'
    if powered == 'off':
        state = 'd'
    elif v['verdict'] == 'READY':
        state = 'a'
    elif n.get('state') == 'failed' or n.get('timedOut'):
        state = 'e'
    else:
        state = '-'
    pairs = [
        ('GUEST_IP_ADDRESSES', '"%s"' % address),
        ('STATE', state),
        ('PROVISIOND_STATE', n.get('state') or 'unseen'),
        ('VERDICT', v['verdict']),
        ('POWER', powered),
        ('VNFS', n.get('vnfs') or '-'),
        ('OWNER', a['owner']),
        ('NODEID', n['nodeid']),
        ('HOSTNAME', a.get('hostname') or node),
    ]
    # oneprovision splits on blanks and on '=': neither may be inside a value.
    return ' '.join('%s=%s' % (k, ''.join('_' if c.isspace() or c == '=' else c for c in str(value))) for k, value in pairs)


def cancel(api, settings, args):
    """`cancel DEPLOY_ID HOST HOST_ID HOST`: the node is released and powered off. Again: nothing to do."""
    node = args[0] if args else ''
    host_id, _host = host_args(args, 2)
    destroy(api, settings, node, owner_of(settings, host_id), orderly=False)


def destroy(api, settings, node, owner, orderly):
    a = allocation(api, node)
    if a is None:
        return  # released already (a retried cancel)
    if a['owner'] != owner:
        raise DriverError('node %s is allocated to %s, not to %s: refusing to release it' % (node, a['owner'], owner))
    if orderly:
        orderly_off(api, settings, node)
    release(api, settings, node)


def reboot(api, settings, args):
    """
    `reboot DEPLOY_ID HOST HOST_ID HOST`, orderly: ACPI shutdown, up to shutdown_grace seconds for the
    node to power off, then provisiond's reload (PXE, power on, or cycle if it is still on), followed
    until the node is ready again.
    """
    node = args[0] if args else ''
    host_id, _host = host_args(args, 2)
    owned(api, node, owner_of(settings, host_id))
    orderly_off(api, settings, node)
    reload(api, settings, node, 'reboot of %s' % node)


def reset(api, settings, args):
    """`reset DEPLOY_ID HOST HOST_ID HOST`, hard: provisiond's reload (PXE, power cycle), followed until ready."""
    node = args[0] if args else ''
    host_id, _host = host_args(args, 2)
    owned(api, node, owner_of(settings, host_id))
    reload(api, settings, node, 'reset of %s' % node)


def shutdown(api, settings, args):
    """
    `shutdown DEPLOY_ID HOST LCM_STATE HOST_ID HOST`: ACPI shutdown (hard off after shutdown_grace);
    SHUTDOWN then releases the node (the host is destroyed), SHUTDOWN_POWEROFF and UNDEPLOY keep it.
    """
    host_id, _host = host_args(args, 3)
    node, lcm_state = args[0], args[2]
    if lcm_state not in SHUTDOWN_STATES:
        raise DriverError('LCM_STATE %r: expected one of %s' % (lcm_state, ', '.join(SHUTDOWN_STATES)))
    owner = owner_of(settings, host_id)
    if lcm_state == 'SHUTDOWN':
        destroy(api, settings, node, owner, orderly=True)
        return None
    owned(api, node, owner)
    if not orderly_off(api, settings, node) and power_state(api, node) != 'off':
        power(api, settings, node, 'off')
    return None


ACTIONS = {'deploy': deploy, 'poll': poll, 'cancel': cancel, 'reboot': reboot, 'reset': reset, 'shutdown': shutdown}
