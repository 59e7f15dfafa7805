from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from webapp.accounts.models import ApiToken, Course, Membership, User

admin.site.site_header = _("Manabi administration")
admin.site.site_title = _("Manabi administration")


@admin.register(User)
class ManabiUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("Manabi", {"fields": ("is_teacher", "display_name")}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("Manabi", {"fields": ("is_teacher",)}),)
    list_display = ("username", "display_name", "is_teacher", "is_staff", "is_active")
    list_filter = ("is_teacher", "is_staff", "is_superuser", "is_active")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("name", "join_code", "join_open", "archived_at", "created_by", "created_at")
    search_fields = ("name", "join_code")
    inlines = [MembershipInline]
    raw_id_fields = ("created_by",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_hash", "prefix", "created_at", "last_used_at")
    raw_id_fields = ("user",)
