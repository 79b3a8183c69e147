"""factory-boy factories for the models the tests build on."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import Account, Contact, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            # get_or_create: transactional tests flush the groups the migration made.
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"crm-{n:05d}")
    name = factory.Sequence(lambda n: f"Account {n}")
    domain = factory.LazyAttribute(lambda a: f"{a.external_id}.example.com")
    segment = "smb"
    arr = Decimal("12000.00")
    contract_start = dt.date(2026, 1, 1)
    renewal_date = dt.date(2027, 1, 1)


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")


class PlaybookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "playbooks.Playbook"

    name = factory.Sequence(lambda n: f"Playbook {n}")
    trigger = "renewal_within"
    trigger_params = factory.LazyFunction(lambda: {"days": 90})
    active_since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class TaskStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "playbooks.Step"

    playbook = factory.SubFactory(PlaybookFactory)
    kind = "task"
    title_template = "Follow up with {{ account.name }}"
    due_in_days = 3


class AlertStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "playbooks.Step"

    playbook = factory.SubFactory(PlaybookFactory)
    kind = "alert"
    title_template = "{{ account.name }} needs attention"
    recipient_rule = "owner"
