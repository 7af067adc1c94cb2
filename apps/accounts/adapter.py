"""django-allauth hooks: who may sign up, and the staff invitation email."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from allauth.utils import build_absolute_uri
from django.conf import settings
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # Read per request rather than at import so an operator (or a test) can flip it.
        return getattr(settings, "STATESET_OPEN_SIGNUP", False)

    def send_staff_invitation_mail(self, *, user, organization, role):
        """Tells `user` they joined `organization`. Until they have a password, the email carries a
        one-time link to set one: a password-reset key, so it expires (PASSWORD_RESET_TIMEOUT) and
        stops working once used, exactly like allauth's own reset emails."""
        context = {
            "user": user,
            "organization": organization,
            "role": role,
            "login_url": build_absolute_uri(self.request, reverse("account_login")),
            "set_password_url": None,
        }
        if not user.has_usable_password():
            key = f"{user_pk_to_url_str(user)}-{default_token_generator.make_token(user)}"
            context["set_password_url"] = self.get_reset_password_from_key_url(key)
        self.send_mail("account/email/staff_invitation", user.email, context)
