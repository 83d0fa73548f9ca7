"""Staff create mediations and appoint mediators and company representatives. No page
shows message plaintext: events are not in the admin at all."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from rooms import services
from rooms.models import Mediation, Membership, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ("user", "role", "status", "muted", "muted_until")
    raw_id_fields = ("user",)
    verbose_name = _("member")
    verbose_name_plural = _("members (appoint mediators and company representatives here)")

    def get_queryset(self, request):
        # A mediation of 150,000 consumers: show the people staff appoint, not the crowd.
        return super().get_queryset(request).exclude(role="consumer").select_related("user")


@admin.register(Mediation)
class MediationAdmin(admin.ModelAdmin):
    list_display = ("title", "company", "phase", "outcome", "closes_at")
    list_filter = ("phase", "outcome")
    search_fields = ("title", "company")
    readonly_fields = ("outcome", "closed_at", "shredded_at", "created_at")
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.plenary_room(obj)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("title", "mediation", "kind", "last_seq", "moderated")
    list_filter = ("kind",)
    fields = ("mediation", "kind", "title", "caucus_member", "moderated", "last_seq", "master_key_id")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False
