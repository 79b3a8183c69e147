"""Everything Lifeline holds about one account or one contact, as JSON (a data subject request).

Found generically, so a model added later is exported too: the rows of every model with a foreign
key to the root, then the rows pointing at those (e.g. an alert's emails), plus the audit rows
about them. Writing an export is itself audited.
"""

import json
from collections.abc import Iterable
from typing import IO, Any

from django.apps import apps
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.models import Account, AuditEntry, Contact

# Secrets and process records are not "about" a customer.
SKIPPED_MODELS = {
    "knox.authtoken",
    "access.loginattempts",
    "sessions.session",
    "accounts.steprun",
    "accounts.auditentry",
}


Rows = models.QuerySet


def _children(parents: Iterable[tuple[type[models.Model], Rows]]) -> list[tuple[str, Rows]]:
    """For each (model, rows), the rows of every model holding a foreign key to that model, among them."""
    found = []
    for parent_model, parent_rows in parents:
        for model in apps.get_models():
            if model._meta.label_lower in SKIPPED_MODELS:
                continue
            for field in model._meta.get_fields():
                if isinstance(field, models.ForeignKey) and field.related_model is parent_model:
                    rows = model._default_manager.filter(**{f"{field.name}__in": parent_rows}).order_by("pk")
                    found.append((f"{model._meta.label_lower}.{field.name}", rows))
    return found


def _rows(queryset: models.QuerySet) -> list[dict[str, Any]]:
    return [
        {"pk": row["pk"], **row["fields"]}
        for row in serializers.serialize("python", queryset.iterator(chunk_size=2000))
    ]


def export_subject(root: Account | Contact, *, actor=None) -> dict[str, Any]:
    """The root row, the rows about it (two levels of foreign keys) and the audit log about them."""
    root_rows = type(root)._default_manager.filter(pk=root.pk)
    level1 = _children([(type(root), root_rows)])
    level2 = _children([(rows.model, rows) for _, rows in level1 if rows.model is not type(root)])
    data: dict[str, Any] = {"subject": root._meta.label_lower, "id": root.pk, "row": _rows(root_rows)[0]}
    related: dict[str, dict[Any, dict[str, Any]]] = {}
    for name, rows in level1 + level2:
        label = name.rsplit(".", 1)[0]  # a row reached by two keys (account, contact) is listed once
        for row in _rows(rows):
            related.setdefault(label, {})[row["pk"]] = row
    related = {label: list(rows.values()) for label, rows in related.items()}
    data["related"] = related
    data["audit"] = _rows(
        AuditEntry.objects.filter(target_type=root._meta.label_lower, target_id=str(root.pk)).order_by("at")
    )
    AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=f"{root._meta.model_name}.export",
        target_type=root._meta.label_lower,
        target_id=str(root.pk),
        changes={"tables": {name: len(rows) for name, rows in related.items()}},
    )
    return data


def write_export(data: dict[str, Any], out: IO[str]) -> None:
    json.dump(data, out, cls=DjangoJSONEncoder, indent=2)
    out.write("\n")
