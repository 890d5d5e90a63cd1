from django.contrib import admin
from django.http import HttpRequest

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
