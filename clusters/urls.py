from django.urls import path

from clusters import views

app_name = "clusters"
urlpatterns = [
    path("", views.cluster_list, name="cluster-list"),
    path("register/", views.cluster_register, name="cluster-register"),
    path("register/parse/", views.kubeconfig_parse, name="kubeconfig-parse"),
    path("test-connection/", views.connection_test_create, name="connection-test-create"),
    path("test-connection/<int:test_id>/", views.connection_test_detail, name="connection-test-detail"),
    path("<slug:name>/", views.cluster_detail, name="cluster-detail"),
    path("<slug:name>/edit/", views.cluster_edit, name="cluster-edit"),
    path("<slug:name>/check/", views.cluster_check, name="cluster-check"),
    path("<slug:name>/enabled/", views.cluster_set_enabled, name="cluster-set-enabled"),
    path("<slug:name>/delete/", views.cluster_delete, name="cluster-delete"),
    path("<slug:name>/options/", views.cluster_source_options, name="cluster-source-options"),
]
# Names a cluster cannot take, because they are pages of their own.
RESERVED_NAMES = {"register", "test-connection"}
