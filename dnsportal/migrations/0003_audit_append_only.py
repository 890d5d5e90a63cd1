"""On PostgreSQL and SQLite, the database itself refuses to change or delete audit entries (not only the app)."""

from django.db import migrations

# `%%` because the schema editor passes the SQL through psycopg's placeholder formatting.
FORBID = """
CREATE OR REPLACE FUNCTION dnsportal_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: %% on dnsportal_auditentry is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER dnsportal_audit_append_only
  BEFORE UPDATE OR DELETE ON dnsportal_auditentry
  FOR EACH ROW EXECUTE FUNCTION dnsportal_audit_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS dnsportal_audit_append_only ON dnsportal_auditentry;
DROP FUNCTION IF EXISTS dnsportal_audit_append_only();
"""


SQLITE_FORBID = [
    f"CREATE TRIGGER dnsportal_audit_no_{op.lower()} BEFORE {op} ON dnsportal_auditentry "
    f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: {op} is not allowed'); END;"
    for op in ("UPDATE", "DELETE")
]
SQLITE_ALLOW = [f"DROP TRIGGER IF EXISTS dnsportal_audit_no_{op};" for op in ("update", "delete")]


def forbid(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(FORBID)
    elif vendor == "sqlite":
        for statement in SQLITE_FORBID:
            schema_editor.execute(statement)


def allow(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(ALLOW)
    elif vendor == "sqlite":
        for statement in SQLITE_ALLOW:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("dnsportal", "0002_roles")]
    operations = [migrations.RunPython(forbid, allow)]
