from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_organization_burst_and_concurrency_limits"),
    ]

    operations = [
        # A rename, not a new column: keys keep who created them.
        migrations.RenameField(model_name="apikey", old_name="created_by", new_name="created_by_user"),
    ]
