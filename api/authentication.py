"""API tokens: ``Authorization: Token <key>``, and ``Bearer <key>`` as generated clients send."""

from rest_framework.authentication import TokenAuthentication


class TokenOrBearerAuthentication(TokenAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        scheme = request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0].lower()
        if scheme not in self.keywords:
            return None
        # The parent compares the scheme with ``keyword``: the one the caller used.
        self.keyword = scheme
        return super().authenticate(request)

    def authenticate_header(self, request):
        return "Token"
