from django.urls import path

from records import views, views_drill, views_shift, views_traffic

app_name = "records"
urlpatterns = [
    path("endpoints/", views.endpoint_list, name="endpoint-list"),
    path("endpoints/errors/", views.endpoint_errors, name="endpoint-errors"),
    path("endpoints/host/<str:dns_name>/", views.hostname_detail, name="hostname-detail"),
    path("endpoints/host/<str:dns_name>/policy/", views_traffic.policy_edit, name="policy-edit"),
    path(
        "endpoints/host/<str:dns_name>/policy/preview/", views_traffic.policy_preview, name="policy-preview"
    ),
    path(
        "endpoints/host/<str:dns_name>/policy/propose/", views_traffic.policy_propose, name="policy-propose"
    ),
    path("accounts/", views.account_list, name="account-list"),
    path("accounts/add/", views.account_create, name="account-create"),
    path("accounts/<int:account_id>/", views.account_detail, name="account-detail"),
    path("accounts/<int:account_id>/check/", views.account_check, name="account-check"),
    path("accounts/<int:account_id>/import/", views.account_import, name="account-import"),
    path("zones/", views.zone_list, name="zone-list"),
    path("zones/<int:zone_id>/", views.zone_detail, name="zone-detail"),
    path("zones/<int:zone_id>/edit/", views.zone_edit, name="zone-edit"),
    path("zones/<int:zone_id>/reconcile/", views.zone_reconcile, name="zone-reconcile"),
    path("zones/<int:zone_id>/adopt/<int:record_id>/", views.zone_adopt, name="zone-adopt"),
    path("changes/<int:changeset_id>/", views.changeset_detail, name="changeset-detail"),
    path("changes/<int:changeset_id>/status/", views.changeset_status, name="changeset-status"),
    path("changes/<int:changeset_id>/approve/", views.changeset_approve, name="changeset-approve"),
    path("changes/<int:changeset_id>/reject/", views.changeset_reject, name="changeset-reject"),
    path("records/", views.record_list, name="record-list"),
    path("changes/", views.changeset_list, name="changeset-list"),
    path("policies/", views.policy_list, name="policy-list"),
    path("policies/patch/<str:token>/", views_traffic.policy_patch, name="policy-patch"),
    path("policies/proposals/", views_traffic.proposal_list, name="proposal-list"),
    path("policies/proposals/<int:proposal_id>/", views_traffic.proposal_detail, name="proposal-detail"),
    path(
        "policies/proposals/<int:proposal_id>/approve/",
        views_traffic.proposal_approve,
        name="proposal-approve",
    ),
    path(
        "policies/proposals/<int:proposal_id>/reject/", views_traffic.proposal_reject, name="proposal-reject"
    ),
    path("policies/proposals/<int:proposal_id>/retry/", views_traffic.proposal_retry, name="proposal-retry"),
    path(
        "policies/proposals/<int:proposal_id>/abandon/",
        views_traffic.proposal_abandon,
        name="proposal-abandon",
    ),
    path("endpoints/host/<str:dns_name>/shift/", views_shift.shift_new, name="shift-new"),
    path("endpoints/host/<str:dns_name>/timeline/", views_shift.hostname_timeline, name="hostname-timeline"),
    path("shifts/<int:plan_id>/", views_shift.shift_detail, name="shift-detail"),
    path("shifts/<int:plan_id>/approve/", views_shift.shift_approve, name="shift-approve"),
    path("shifts/<int:plan_id>/reject/", views_shift.shift_reject, name="shift-reject"),
    path("shifts/<int:plan_id>/pause/", views_shift.shift_pause, name="shift-pause"),
    path("shifts/<int:plan_id>/resume/", views_shift.shift_resume, name="shift-resume"),
    path("shifts/<int:plan_id>/abort/", views_shift.shift_abort, name="shift-abort"),
    path("endpoints/host/<str:dns_name>/drill/", views_drill.drill_new, name="drill-new"),
    path("drills/<int:drill_id>/", views_drill.drill_detail, name="drill-detail"),
    path("drills/<int:drill_id>/approve/", views_drill.drill_approve, name="drill-approve"),
    path("drills/<int:drill_id>/reject/", views_drill.drill_reject, name="drill-reject"),
    path("drills/<int:drill_id>/cancel/", views_drill.drill_cancel, name="drill-cancel"),
    path("verification/", views.verification_list, name="verification-list"),
    path("verification/<int:verification_id>/", views.verification_detail, name="verification-detail"),
    path("verification/measure/", views.verification_measure, name="verification-measure"),
    path("verification/probe/", views.verification_probe, name="verification-probe"),
    path("zones/<int:zone_id>/verify/", views.zone_verify, name="zone-verify"),
]
