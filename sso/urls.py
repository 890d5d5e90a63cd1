from django.urls import path

from sso import views

app_name = "sso"
urlpatterns = [
    path("login/", views.SSOStartView.as_view(), name="login"),
    path("callback/", views.SSOCallbackView.as_view(), name="callback"),
]
