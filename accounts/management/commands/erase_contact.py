from django.core.management.base import BaseCommand, CommandError

from accounts.governance import erase_contact
from accounts.models import Contact


class Command(BaseCommand):
    help = (
        "Erase a contact's personal data on request: the contact is deleted, its events and survey "
        "scores stay with the account (without free text). Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("contact_id", type=int)

    def handle(self, *args, contact_id: int, **options):
        contact = Contact.objects.filter(pk=contact_id).first()
        if contact is None:
            raise CommandError(f"No contact with id {contact_id}.")
        erasure = erase_contact(contact=contact)
        self.stdout.write(
            f"Erased contact {erasure.contact_id} of account {erasure.account_id}: "
            f"{erasure.events_unlinked} events and {erasure.surveys_unlinked} survey answers kept, unlinked."
        )
