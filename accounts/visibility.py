"""Roles and the one scoping rule that every view and API goes through (DESIGN.md, Visibility).

A CSM sees the accounts they own and those of their teams; a manager sees every account of the
teams they manage (and of teams they belong to); an admin sees everything.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from accounts.models import Account, Team

ROLE_CSM = "csm"
ROLE_MANAGER = "manager"
ROLE_ADMIN = "admin"
ROLES = (ROLE_CSM, ROLE_MANAGER, ROLE_ADMIN)

User = AbstractBaseUser | AnonymousUser


def has_role(user: User, role: str) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    # One query per request at most: the group names are cached on the user object.
    if not hasattr(user, "_lifeline_roles"):
        user._lifeline_roles = set(user.groups.values_list("name", flat=True))
    return role in user._lifeline_roles


def is_admin(user: User) -> bool:
    return has_role(user, ROLE_ADMIN)


def is_manager(user: User) -> bool:
    return has_role(user, ROLE_MANAGER) or is_admin(user)


def visible_teams(user: User) -> QuerySet[Team]:
    """Teams whose accounts the user may see: all for admins, else those they manage or join."""
    if not user.is_authenticated or not user.is_active:
        return Team.objects.none()
    if is_admin(user):
        return Team.objects.all()
    return Team.objects.filter(Q(manager=user) | Q(members=user)).distinct()


def visible_accounts(user: User) -> QuerySet[Account]:
    """The accounts a user may see; everything else is a 404 for them."""
    if not user.is_authenticated or not user.is_active:
        return Account.objects.none()
    if is_admin(user):
        return Account.objects.all()
    team_ids = Team.objects.filter(Q(manager=user) | Q(members=user)).values("id")
    return Account.objects.filter(Q(owner=user) | Q(team_id__in=team_ids))


def assignable_users(user: User):
    """Users the given user may name as an account owner: members and managers of their teams."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True)
    if is_admin(user):
        return users
    teams = visible_teams(user).values("id")
    return users.filter(Q(teams__in=teams) | Q(managed_teams__in=teams) | Q(pk=user.pk)).distinct()
