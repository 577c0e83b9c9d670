"""Add pages prefilled from the address (``?client=3``, as the admin's own links do)."""

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, ValidationError


class RelatedPrefillAdmin(admin.ModelAdmin):
    """Leaves out a prefilled related field whose value is not an id (``?client=abc``):
    Django's autocomplete widget fails on it (ValueError, a 500) while it renders the form."""

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        for name, value in list(initial.items()):
            try:
                field = self.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if not field.is_relation or field.target_field is None:
                continue
            try:
                for one in value if isinstance(value, list) else [value]:
                    field.target_field.to_python(one)
            except ValidationError:
                del initial[name]
        return initial
