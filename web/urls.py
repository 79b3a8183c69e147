from django.urls import path

from web import views

urlpatterns = [
    path("", views.book, name="home"),
    path("accounts/<int:pk>/", views.account_detail, name="account"),
    path(
        "accounts/<int:pk>/milestones/<slug:key>/complete/",
        views.milestone_complete,
        name="milestone-complete",
    ),
    path("accounts/<int:pk>/touchpoints/", views.touchpoint_add, name="touchpoint-add"),
    path("accounts/<int:pk>/tasks/", views.task_add, name="task-add"),
    path("accounts/<int:pk>/override/", views.override_set, name="override-set"),
    path("accounts/<int:pk>/override/lift/", views.override_lift, name="override-lift"),
    path("tasks/", views.tasks, name="tasks"),
    path("tasks/<int:pk>/complete/", views.task_complete, name="task-complete"),
    path("tasks/<int:pk>/snooze/", views.task_snooze, name="task-snooze"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:pk>/read/", views.alert_read, name="alert-read"),
    path("alerts/<int:pk>/judge/", views.alert_judge, name="alert-judge"),
    path("renewals/", views.renewals, name="renewals"),
    path("portfolio/", views.portfolio, name="portfolio"),
    path("journeys/", views.journeys, name="journeys"),
    path("backtest/", views.backtest, name="backtest"),
]
