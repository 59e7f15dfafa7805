"""The ML problem a dataset is for is its kind; `task` only ever means a Celery task (issue 11).

RenameField keeps every row's value: classification stays classification.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="dataset", old_name="task", new_name="kind"),
        migrations.AlterField(
            model_name="dataset",
            name="kind",
            field=models.CharField(
                choices=[
                    ("classification", "Classification"),
                    ("detection", "Object detection"),
                    ("segmentation", "Segmentation"),
                    ("keypoints", "Keypoints (pose)"),
                ],
                max_length=20,
                verbose_name="kind",
            ),
        ),
    ]
