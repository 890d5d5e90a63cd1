class PortalError(Exception):
    """A refused action, as one sentence the operator can act on (shown as is, with status 422)."""
