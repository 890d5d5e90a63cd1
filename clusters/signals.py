"""Signals of the clusters app."""

from django.dispatch import Signal

# Sent with cluster_id and names (DNS names whose desired state changed) after discovery stored a change;
# the reconcile of the zones holding those names listens to it.
endpoints_changed = Signal()
