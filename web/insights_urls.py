from django.urls import path

from web import insights_views

urlpatterns = [
    path("value/", insights_views.value_page, name="value"),
    path("voice/", insights_views.voice_page, name="voice"),
    path("churn/", insights_views.churn_page, name="churn"),
]
