from django.urls import path

from rooms import views

urlpatterns = [
    path("mediations", views.mediation_list),
    path("mediations/<str:mediation_id>", views.mediation_detail),
    path("mediations/<str:mediation_id>/register", views.mediation_register),
    path("mediations/<str:mediation_id>/registration", views.my_registration),
    path("mediations/<str:mediation_id>/registration/documents", views.registration_document_add),
    path("mediations/<str:mediation_id>/registrations", views.registration_queue),
    path("mediations/<str:mediation_id>/registrations/decide", views.registrations_decide),
    path("mediations/<str:mediation_id>/notices", views.my_notices),
    path("mediations/<str:mediation_id>/advance", views.mediation_advance),
    path("documents/<str:document_id>", views.document_download),
    path("ballots/<str:ballot_id>/record.pdf", views.agreement_record),
    path("mediations/<str:mediation_id>/members", views.mediation_members),
    path("mediations/<str:mediation_id>/rooms", views.mediation_rooms),
    path("rooms/<str:room_id>/events", views.room_events),
]
