from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0003_stable_uids_and_drafts"),
    ]

    operations = [
        migrations.AddField(
            model_name="category",
            name="sigmas",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
