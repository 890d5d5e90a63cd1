from django.urls import path

from records import views

app_name = "records"
urlpatterns = [
    path("endpoints/", views.endpoint_list, name="endpoint-list"),
    path("endpoints/errors/", views.endpoint_errors, name="endpoint-errors"),
    path("endpoints/host/<str:dns_name>/", views.hostname_detail, name="hostname-detail"),
    path("zones/", views.zone_list, name="zone-list"),
    path("records/", views.record_list, name="record-list"),
    path("changes/", views.changeset_list, name="changeset-list"),
    path("policies/", views.policy_list, name="policy-list"),
    path("verification/", views.verification_list, name="verification-list"),
]
