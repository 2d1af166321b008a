from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Deployment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("bundle_id", models.CharField(max_length=100, unique=True)),
                ("user_name", models.CharField(db_index=True, max_length=50)),
                ("facility", models.CharField(blank=True, max_length=240)),
                ("workflow", models.CharField(blank=True, max_length=500)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name="Return",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("webhook_id", models.CharField(max_length=100, unique=True)),
                ("bundle_id", models.CharField(db_index=True, max_length=100)),
                ("user_name", models.CharField(db_index=True, max_length=50)),
                ("return_id", models.CharField(max_length=100)),
                ("status", models.CharField(blank=True, max_length=40)),
                ("event", models.CharField(blank=True, max_length=60)),
                ("received", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["-received", "-id"]},
        ),
    ]
