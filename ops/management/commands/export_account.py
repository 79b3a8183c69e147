import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account, Contact
from ops.exports import export_subject, write_export


class Command(BaseCommand):
    help = "Export everything about an account (or, with --contact, a contact) as JSON. Audited."

    def add_arguments(self, parser):
        parser.add_argument("id", type=int, help="the account's id (or the contact's, with --contact)")
        parser.add_argument("--contact", action="store_true", help="export a contact instead of an account")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args, id: int, contact: bool, output: str | None, **options):
        model = Contact if contact else Account
        root = model.objects.filter(pk=id).first()
        if root is None:
            raise CommandError(f"No {model._meta.verbose_name} with id {id}.")
        data = export_subject(root)
        if output:
            with open(output, "w", encoding="utf-8") as out:
                write_export(data, out)
            self.stderr.write(f"Wrote {output}.")
        else:
            write_export(data, sys.stdout if self.stdout is None else self.stdout)
