from axes.models import AccessAttempt
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from dnsportal.login_throttle import lock_list, login_unlock
from dnsportal.models import AuditEntry, JobRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown for reading; nobody adds, changes or deletes these rows through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "object_type", "object_id", "request_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor_name", "action", "object_type", "object_id", "object_repr", "request_id")
    date_hierarchy = "at"

    def get_actions(self, request: HttpRequest) -> dict:
        return {}  # no bulk "delete selected"


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "status", "actor_name", "created_at", "finished_at")
    list_filter = ("status", "name")
    search_fields = ("name", "error")


@admin.register(AccessAttempt)
class AccessAttemptAdmin(admin.ModelAdmin):
    """django-axes's failed logins, one row per (username, address, browser). Deleting rows unlocks their
    (username, address) pair, after Django's confirmation page, with an audit entry (login_throttle)."""

    list_display = (
        "username",
        "ip_address",
        "failures_since_start",
        "pair_state",
        "attempt_time",
        "user_agent",
    )
    search_fields = ("username", "ip_address")
    date_hierarchy = "attempt_time"
    fields = ("username", "ip_address", "user_agent", "failures_since_start", "attempt_time", "path_info")
    readonly_fields = fields

    @admin.display(description="state of the pair")
    def pair_state(self, obj: AccessAttempt) -> str:
        for lock in lock_list():
            if (lock.username, lock.ip_address) == (obj.username or "", obj.ip_address or ""):
                until = f" until {lock.until:%H:%M:%S}" if lock.until else ""
                state = "locked" if lock.locked else ("slowed" if lock.until else "counting")
                return f"{state}{until} ({lock.failures} failures)"
        return "expired"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: AccessAttempt) -> None:
        login_unlock(username=obj.username or "", ip_address=obj.ip_address or "", actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for username, ip in sorted(set(queryset.values_list("username", "ip_address"))):
            login_unlock(username=username or "", ip_address=ip or "", actor=request.user)
