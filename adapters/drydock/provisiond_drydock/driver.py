"""What both drivers share: Drydock's execution model.

``execute_task(task_id)`` runs one subtask per target node in a pool of 64 threads, waits for each
up to the action's timeout, then rolls the subtasks' results up into the task: per-node
``successes`` and ``failures``, result ``success``, ``partial_success`` or ``failure``, status
messages ``{message, error, context_type, context, ts}``, status ``complete``. Site-wide actions
(validate_*_services, templates) run once on the task itself.
"""

import concurrent.futures
import logging
from typing import Any, Callable, Dict, Optional

from . import fields
from .client import ApiClient, ApiError
from .interface import DriverError
from .resolve import NotIdentified
from .settings import Settings

Action = Callable[[Any, Any], None]

# A subtask gets this much longer than its own deadline before the task gives up on it.
GRACE = 15.0


def note(task: Any, msg: str, ctx: str, error: bool = False, ctx_type: str = 'node') -> None:
    task.add_status_msg(msg=msg, error=error, ctx=ctx, ctx_type=ctx_type)


class ProvisiondDriverMixin:
    """Mixed into the OOB and node drivers (after Drydock's base class, or ours)."""

    driver_desc = 'provisiond driver'
    # action -> method name; the method takes (task, node) (node None for site-wide actions)
    action_map: Dict[str, str] = {}
    site_actions: tuple = ()

    def _init_provisiond(self, settings: Optional[Settings]) -> None:
        self.settings = settings or Settings.load()
        self.client = ApiClient(self.settings)
        self.supported_actions = list(self.action_map)
        self.logger = logging.getLogger('drydock.provisiond')

    def execute_task(self, task_id: Any) -> None:
        task = self.state_manager.get_task(task_id)
        if task is None:
            raise DriverError('Invalid task %s' % task_id)
        if task.action not in self.supported_actions:
            raise DriverError("Driver %s doesn't support task action %s" % (self.driver_desc, task.action))
        task.set_status(fields.RUNNING)
        task.save()
        action = getattr(self, self.action_map[task.action])

        if task.action in self.site_actions:
            self._guarded(action, task, None)
            task.set_status(fields.COMPLETE)
            task.save()
            return

        try:
            nodes = list(self.orchestrator.get_target_nodes(task))
        except Exception as e:  # the design cannot be rendered: the task fails, Drydock goes on
            note(task, 'cannot find the target nodes: %s' % e, str(task.get_id()), error=True, ctx_type='task')
            task.failure()
            task.set_status(fields.COMPLETE)
            task.save()
            return
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)
        running = {}
        try:
            for n in nodes:
                nf = self.orchestrator.create_nodefilter_from_nodelist([n])
                sub = self.orchestrator.create_task(action=task.action, design_ref=task.design_ref, node_filter=nf)
                task.register_subtask(sub)
                running[str(sub.get_id())] = (n, pool.submit(self._run_subtask, action, sub, n))
            concurrent.futures.wait([f for _, f in running.values()], timeout=self.settings.timeout(task.action) + GRACE)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        task.align_result()
        task.bubble_results()
        for sid, (n, f) in running.items():
            if not f.done():
                note(task, 'Subtask %s timed out before completing.' % sid, sid, error=True, ctx_type='task')
                task.failure(focus=n.name)
        task.set_status(fields.COMPLETE)
        task.save()

    def _run_subtask(self, action: Action, sub: Any, node: Any) -> None:
        sub.set_status(fields.RUNNING)
        sub.save()
        self._guarded(action, sub, node)
        sub.set_status(fields.COMPLETE)
        sub.save()

    def _guarded(self, action: Action, task: Any, node: Any) -> None:
        """Runs an action; whatever it raises becomes the node's (or task's) failure and message."""
        ctx, ctx_type = (node.name, 'node') if node is not None else (str(task.get_id()), 'task')
        try:
            action(task, node)
        except (NotIdentified, ApiError, TimeoutError) as e:
            note(task, str(e), ctx, error=True, ctx_type=ctx_type)
            task.failure(focus=node.name if node is not None else None)
        except Exception as e:  # a driver bug must not take Drydock's worker with it
            self.logger.exception('provisiond %s on %s failed', task.action, ctx)
            note(task, 'provisiond driver error: %s: %s' % (type(e).__name__, e), ctx, error=True, ctx_type=ctx_type)
            task.failure(focus=node.name if node is not None else None)

    # --- shared actions ---

    def _validate_services(self, task: Any, _node: Any) -> None:
        """The API answers and the token may power nodes (role operator or admin)."""
        ctx = str(task.get_id())
        me = self.client.whoami()
        if me.get('role') not in ('operator', 'admin'):
            note(task, 'provisiond API %s: token %s has role %s; Drydock needs operator or admin'
                 % (self.settings.api_url, me.get('name'), me.get('role')), ctx, error=True, ctx_type='task')
            task.failure()
            return
        note(task, 'provisiond API %s answers; token %s (%s).' % (self.settings.api_url, me.get('name'), me.get('role')),
             ctx, ctx_type='task')
        task.success()

    def _node_task(self, task: Any, node: Any, name: str, verb: str, body: Dict[str, Any],
                   on_change: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Starts a provisiond task on one node, waits for it, and returns that node's part
        (``{node, status, result, phase, messages}``). A retried call of the same subtask gets the
        same provisiond task back (Idempotency-Key), never a second power cycle."""
        key = 'drydock-%s-%s' % (task.get_id(), verb)
        started = self.client.node_task(name, verb, body, key)
        done = self.client.wait_task(started, self.settings.timeout(task.action), on_change)
        part = next((p for p in done.get('nodes', []) if p.get('node') == name), None)
        if part is None:
            raise ApiError(200, 'unexpected', 'provisiond task %s has no result for %s' % (done.get('id'), name))
        return part


def last_message(part: Dict[str, Any]) -> str:
    msgs = part.get('messages') or []
    return msgs[-1]['message'] if msgs else part.get('result', '')
