from django.urls import path

from api import views_pages

app_name = "account"
urlpatterns = [
    path("tokens/", views_pages.token_list, name="token-list"),
    path("tokens/all/", views_pages.token_all, name="token-all"),
    path("tokens/<int:token_id>/revoke/", views_pages.token_revoke, name="token-revoke"),
]
