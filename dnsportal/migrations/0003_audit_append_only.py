"""On PostgreSQL (the only database), the database itself refuses to change or delete audit entries (not only the app)."""

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


def forbid(apps, schema_editor):
    schema_editor.execute(FORBID)


def allow(apps, schema_editor):
    schema_editor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [("dnsportal", "0002_roles")]
    operations = [migrations.RunPython(forbid, allow)]
