"""Drydock's enumerated values, as the plain strings its objects carry.

Drydock's ``objects.fields`` enums compare equal to these strings, so the drivers work with
Drydock's task objects and with any stand-in that uses the same values.
"""

# Task.status
REQUESTED = 'requested'
QUEUED = 'queued'
RUNNING = 'running'
TERMINATING = 'terminating'
TERMINATED = 'terminated'
COMPLETE = 'complete'

# Task.result.status
INCOMPLETE = 'incomplete'
SUCCESS = 'success'
PARTIAL_SUCCESS = 'partial_success'
FAILURE = 'failure'
UNREPORTED = 'unreported'

# OOB driver actions
VALIDATE_OOB_SERVICES = 'validate_oob_services'
CONFIG_NODE_PXE = 'config_node_pxe'
SET_NODE_BOOT = 'set_node_boot'
POWER_OFF_NODE = 'power_off_node'
POWER_ON_NODE = 'power_on_node'
POWER_CYCLE_NODE = 'power_cycle_node'
INTERROGATE_OOB = 'interrogate_oob'

OOB_ACTIONS = [
    VALIDATE_OOB_SERVICES, CONFIG_NODE_PXE, SET_NODE_BOOT, POWER_OFF_NODE,
    POWER_ON_NODE, POWER_CYCLE_NODE, INTERROGATE_OOB,
]

# Node driver actions
VALIDATE_NODE_SERVICES = 'validate_node_services'
CREATE_NETWORK_TEMPLATE = 'create_network_template'
CREATE_STORAGE_TEMPLATE = 'create_storage_template'
CREATE_BOOT_MEDIA = 'create_boot_media'
CONFIGURE_USER_CREDENTIALS = 'configure_user_credentials'
CONFIGURE_NODE_PROVISIONER = 'configure_node_provisioner'
PREPARE_HARDWARE_CONFIG = 'prepare_hardware_config'
IDENTIFY_NODE = 'identify_node'
CONFIGURE_HARDWARE = 'configure_hardware'
INTERROGATE_NODE = 'interrogate_node'
APPLY_NODE_NETWORKING = 'apply_node_networking'
APPLY_NODE_STORAGE = 'apply_node_storage'
APPLY_NODE_PLATFORM = 'apply_node_platform'
DEPLOY_NODE = 'deploy_node'
DESTROY_NODE = 'destroy_node'

NODE_ACTIONS = [
    VALIDATE_NODE_SERVICES, CREATE_NETWORK_TEMPLATE, CREATE_STORAGE_TEMPLATE,
    CREATE_BOOT_MEDIA, CONFIGURE_USER_CREDENTIALS, CONFIGURE_NODE_PROVISIONER,
    PREPARE_HARDWARE_CONFIG, IDENTIFY_NODE, CONFIGURE_HARDWARE, INTERROGATE_NODE,
    APPLY_NODE_NETWORKING, APPLY_NODE_STORAGE, APPLY_NODE_PLATFORM, DEPLOY_NODE,
    DESTROY_NODE,
]
