"""The browser client's pages (static/): one page, routed in the browser."""

from django.urls import path

from rooms import pages, transparency

urlpatterns = [
    path("", pages.app, name="app"),
    path("mediations/<int:mediation_id>/", pages.app, name="mediation-page"),
    path("mediations/<int:mediation_id>/about/", transparency.mediation_page, name="mediation-about"),
    path("rooms/<int:room_id>/", pages.app, name="room-page"),
]
