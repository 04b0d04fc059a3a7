"""The part of Drydock the drivers rely on, and the base classes they extend.

Drydock (airship-drydock) is not a dependency: inside Drydock the drivers extend its own
``OobDriver`` and ``NodeDriver``; anywhere else (tests, a stand-in orchestrator) they extend the
minimal ``ProviderDriver`` below. Either way they use only what the protocols here list, which is
what Drydock's own drivers (pyghmi, libvirt, MaaS) use.
"""

from typing import Any, Iterable, Optional, Protocol


class DriverError(Exception):
    """A task the driver cannot run (unknown task, unsupported action): Drydock's DriverError."""


class TaskResult(Protocol):
    status: str
    successes: list
    failures: list


class Task(Protocol):
    """``objects.Task``: a task and its subtasks, kept by the state manager."""

    action: str
    design_ref: Any
    node_filter: Any
    result: TaskResult

    def get_id(self) -> Any: ...
    def set_status(self, status: str) -> None: ...
    def save(self) -> None: ...
    def success(self, focus: Optional[str] = None) -> None: ...
    def failure(self, focus: Optional[str] = None) -> None: ...
    def add_status_msg(self, msg: str, error: bool, ctx: str, ctx_type: str, **kwargs: Any) -> None: ...
    def register_subtask(self, subtask: 'Task') -> None: ...
    def align_result(self, action_filter: Optional[str] = None, reset_status: bool = True) -> None: ...
    def bubble_results(self, action_filter: Optional[str] = None) -> None: ...


class Node(Protocol):
    """``objects.BaremetalNode``, the fields read: ``name``, ``boot_mac``, ``oob_type``,
    ``oob_parameters`` (a dict) and ``image`` (the platform's image, e.g. ``xenial``)."""

    name: str


class Orchestrator(Protocol):
    def get_target_nodes(self, task: Task) -> Iterable[Node]: ...
    def create_nodefilter_from_nodelist(self, node_list: list) -> Any: ...
    def create_task(self, **kwargs: Any) -> Task: ...


class StateManager(Protocol):
    def get_task(self, task_id: Any) -> Optional[Task]: ...


class ProviderDriver:
    """Drydock's ``drivers.driver.ProviderDriver`` as far as the drivers need it."""

    driver_name = 'generic'
    driver_key = 'generic'
    driver_desc = 'Generic Provider Driver'

    def __init__(self, orchestrator=None, state_manager=None, **kwargs):
        if orchestrator is None:
            raise ValueError('ProviderDriver requires valid orchestrator')
        if state_manager is None:
            raise ValueError('ProviderDriver requires valid state manager')
        self.orchestrator = orchestrator
        self.state_manager = state_manager
        self.supported_actions = []


class OobDriverBase(ProviderDriver):
    """Drydock's ``drivers.oob.driver.OobDriver``: chosen by the node's ``oob_type``."""

    oob_types_supported: list = []

    @classmethod
    def oob_type_support(cls, type_string):
        return type_string in cls.oob_types_supported


class NodeDriverBase(ProviderDriver):
    """Drydock's ``drivers.node.driver.NodeDriver``."""


# Inside Drydock, extend its classes so that it sees its own kind of driver.
try:  # pragma: no cover - Drydock is not installed where the tests run
    from drydock_provisioner.drivers.oob.driver import OobDriver as OobDriverBase  # type: ignore # noqa: F811
    from drydock_provisioner.error import DriverError  # type: ignore # noqa: F811
except ImportError:
    pass
try:  # pragma: no cover
    from drydock_provisioner.drivers.node.driver import NodeDriver as NodeDriverBase  # type: ignore # noqa: F811
except ImportError:
    pass
