from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from crypto import views as crypto_views
from project import views
from project.api import allow

handler400 = "project.errors.bad_request"
handler403 = "project.errors.permission_denied"
handler404 = "project.errors.page_not_found"
handler500 = "project.errors.server_error"

urlpatterns = [
    path("healthz", views.healthz),
    path("api/v1/auth/csrf", views.auth_csrf),
    path("api/v1/auth/login", views.auth_login),
    path("api/v1/auth/logout", views.auth_logout),
    path("api/v1/auth/me", views.me),
    path("api/v1/openapi.json", views.openapi),
    path("api/v1/", include("rooms.urls")),
    path("api/v1/", include("ballots.urls")),
    # crypto/ knows nothing of the API's plumbing: the method check is wired here.
    path("api/v1/keys", allow("GET", "HEAD")(crypto_views.keys)),
    path("api/v1/", include("crypto.urls")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("rooms.page_urls")),
]
