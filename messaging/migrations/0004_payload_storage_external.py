"""Postgres: keep the payload bytes uncompressed (STORAGE EXTERNAL).

A PDF's content is already deflated, but its first kilobyte (header, object dictionaries) is text, so
Postgres's default TOAST compression (pglz) finds early matches, runs over the whole document and then
throws its work away (a real 100 KB receipt shrinks by 3%, pglz keeps only savings of 25% or more). That
pass halved what one connection commits: 560-590 real 100 KB PDFs a second against 1,180-1,240 with the
column EXTERNAL (bench/send_pdf_throughput.py --pdf real-like, the default, measures it through the service).
SQLite never compresses, so nothing changes there. Rows written before keep their form; both read alike.
"""

from django.db import migrations


def _set_storage(storage: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("messaging", "MessagePayload")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN data SET STORAGE {storage}")

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0003_message_kind"),
    ]

    operations = [
        migrations.RunPython(_set_storage("EXTERNAL"), _set_storage("EXTENDED")),
    ]
