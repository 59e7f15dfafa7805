"""URL configuration: pages, the API v1, health, admin, language switch."""

from django.contrib import admin
from django.urls import include, path

from webapp import converters
from webapp.accounts import course_views
from webapp.accounts import views as account_views
from webapp.api.urls import api
from webapp.datasets import views as dataset_views
from webapp.front import views as front_views

converters.register()  # <id:...>: at most 18 digits, so an id always fits

urlpatterns = [
    path("", front_views.home, name="home"),
    path("healthz", front_views.healthz, name="healthz"),
    path("accounts/login/", account_views.login_view, name="login"),
    path("accounts/logout/", account_views.logout_view, name="logout"),
    path("accounts/register/", account_views.register_view, name="register"),
    path("accounts/settings/", account_views.settings_view, name="account_settings"),
    path(
        "accounts/tokens/<id:token_id>/revoke/",
        account_views.token_revoke_view,
        name="token_revoke",
    ),
    path("courses/", course_views.course_list, name="course_list"),
    path("courses/<id:course_id>/", course_views.course_detail, name="course_detail"),
    path("courses/<id:course_id>/roster/", course_views.course_roster, name="course_roster"),
    path("courses/<id:course_id>/settings/", course_views.course_settings, name="course_settings"),
    path(
        "courses/<id:course_id>/members/<id:membership_id>/",
        course_views.member_action,
        name="member_action",
    ),
    path("courses/<id:course_id>/roster/import/", course_views.roster_import, name="roster_import"),
    path("courses/<id:course_id>/datasets/", dataset_views.course_datasets, name="course_datasets"),
    path("courses/<id:course_id>/datasets/sample/", dataset_views.copy_sample, name="copy_sample"),
    path("datasets/<id:dataset_id>/", dataset_views.dataset_detail, name="dataset_detail"),
    path("datasets/<id:dataset_id>/status/", dataset_views.dataset_status, name="dataset_status"),
    path("datasets/<id:dataset_id>/gallery/", dataset_views.gallery, name="dataset_gallery"),
    path("datasets/<id:dataset_id>/edit/", dataset_views.edit, name="dataset_edit"),
    path(
        "datasets/<id:dataset_id>/items/<id:item_id>/",
        dataset_views.item_detail,
        name="dataset_item",
    ),
    path(
        "datasets/<id:dataset_id>/items/<id:item_id>/image",
        dataset_views.item_image,
        name="dataset_image",
    ),
    path(
        "datasets/<id:dataset_id>/items/<id:item_id>/thumb",
        dataset_views.item_thumb,
        name="dataset_thumb",
    ),
    path("", include("webapp.jobs.urls")),
    path("", include("webapp.assignments.urls")),
    path("", include("webapp.faces.urls")),
    path("", include("webapp.poses.urls")),
    path("", include("webapp.studio.urls")),
    path("", include("webapp.labelling.urls")),
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler400 = front_views.bad_request
handler403 = front_views.forbidden
handler404 = front_views.not_found
handler500 = front_views.server_error
