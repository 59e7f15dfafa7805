"""`manage.py create_teacher USERNAME --password PW`: make (or promote) a teacher account."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.models import User


class Command(BaseCommand):
    help = "Create a teacher account (or make an existing user a teacher)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", help="Password for a new account (required for new).")
        parser.add_argument("--display-name", default="")

    def handle(self, *args, username, password, display_name, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            if not password:
                raise CommandError("A new teacher needs --password.")
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            User.objects.create_user(
                username=username, password=password, is_teacher=True, display_name=display_name
            )
            self.stdout.write(self.style.SUCCESS(f"Teacher {username} created."))
            return
        user.is_teacher = True
        if password:
            user.set_password(password)
        if display_name:
            user.display_name = display_name
        user.save()
        self.stdout.write(self.style.SUCCESS(f"{username} is now a teacher."))
