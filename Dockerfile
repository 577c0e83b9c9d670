# The app's image: web (gunicorn), Celery worker and beat all run from it (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /app

# WeasyPrint's system libraries and a font, for the monthly statement PDFs (docs/statements.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libfontconfig1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, at the versions of requirements.lock: this layer is rebuilt only when
# the lock or pyproject.toml changes, not on every code change.
COPY pyproject.toml requirements.lock ./
RUN pip install -c requirements.lock .

COPY . .

# Static files are part of the image (whitenoise serves them); collectstatic needs no database
# but the settings need a secret key, which the image must not carry.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v0

# The processes run as an unprivileged user that cannot change the code or the static files.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent app
# Files of ticket messages (MEDIA_ROOT): the one directory the app writes, a volume in
# docker-compose.yml shared by the web app (downloads) and the worker (mail intake).
RUN mkdir -p /app/media && chown app /app/media
USER app

EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn supportbilling.wsgi --bind 0.0.0.0:${PORT} --access-logfile -"]
