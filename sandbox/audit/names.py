"""Event names (`TYPE.ACTION`, or `TYPE.ACTION.PROPERTY`) that the log's `event` filter accepts."""

# Tailscale's filter is a closed list. These are its documented names for the kinds of target
# the sandbox models (keys, nodes, users, and the tailnet's device-approval setting); any other
# name, documented or not, is refused here.
TAILSCALE_EVENT_NAMES = frozenset(
    {
        "API_KEY.CREATE",
        "API_KEY.EXPIRED",
        "API_KEY.REVOKE",
        "NODE.APPROVE",
        "NODE.CREATE",
        "NODE.CREATE.ATTRIBUTES",
        "NODE.DELETE",
        "NODE.DELETE.ATTRIBUTES",
        "NODE.DISABLE.KEY_EXPIRY",
        "NODE.DISCONNECT_NODE.CLIENT_LOG",
        "NODE.ENABLE.KEY_EXPIRY",
        "NODE.EXPIRED.KEY_EXPIRY_TIME",
        "NODE.LOGIN",
        "NODE.LOGOUT",
        "NODE.REVOKE",
        "NODE.UPDATE.ACL_TAGS",
        "NODE.UPDATE.ALLOWED_IPS",
        "NODE.UPDATE.ATTRIBUTES",
        "NODE.UPDATE.AUTO_APPROVED_ROUTES",
        "NODE.UPDATE.EXIT_NODE",
        "NODE.UPDATE.KEY_EXPIRY_TIME",
        "NODE.UPDATE.MACHINE_NAME",
        "NODE.UPDATE.POSTURE_IDENTITY",
        "NODE.UPDATE.TKA",
        "TAILNET.DISABLE.MACHINE_APPROVAL_NEEDED",
        "TAILNET.ENABLE.MACHINE_APPROVAL_NEEDED",
        "USER.APPROVE",
        "USER.CREATE",
        "USER.DELETE",
        "USER.INVITE",
        "USER.PUSH_USER.ATTRIBUTES",
        "USER.RESEND.TAILNET_INVITE",
        "USER.RESTORE",
        "USER.RESTORE_GLOBAL",
        "USER.SUSPEND",
        "USER.SUSPEND_GLOBAL",
        "USER.UPDATE.USER_ROLE",
    }
)
# How consent is logged is not documented [?]: the sandbox's own names, behind a switch.
OAUTH_APP_EVENT_NAMES = frozenset(
    {
        "OAUTH_APP.APPROVE",
        "OAUTH_APP.CREATE",
        "OAUTH_APP.DELETE",
        "OAUTH_APP.REVOKE",
        "OAUTH_APP.UPDATE",
    }
)
OAUTH_APP = "OAUTH_APP"


def event_name(target_type: str, action: str, target_property: str) -> str:
    """Name an event as the filter does: with its property only where Tailscale's names do."""
    name = f"{target_type}.{action}"
    with_property = f"{name}.{target_property}"
    return with_property if with_property in TAILSCALE_EVENT_NAMES else name


def accepted_event_names(oauth_app_events: bool) -> frozenset[str]:
    """Every name the `event` filter accepts right now."""
    if oauth_app_events:
        return TAILSCALE_EVENT_NAMES | OAUTH_APP_EVENT_NAMES
    return TAILSCALE_EVENT_NAMES
