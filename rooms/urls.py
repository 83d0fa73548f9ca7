from django.urls import path

from rooms import views

urlpatterns = [
    path("mediations", views.mediation_list),
    path("mediations/<str:mediation_id>", views.mediation_detail),
    path("mediations/<str:mediation_id>/register", views.mediation_register),
    path("mediations/<str:mediation_id>/members", views.mediation_members),
    path("mediations/<str:mediation_id>/rooms", views.mediation_rooms),
    path("rooms/<str:room_id>/events", views.room_events),
]
