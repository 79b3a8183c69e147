# Lifeline: one image for web, worker, beat and release (the command picks the process).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIFELINE_VAR_DIR=/app/var

WORKDIR /app
RUN useradd --system --create-home --uid 10001 lifeline

# Dependencies first, so a code change does not reinstall them (pyproject installs no package).
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
# Static files are collected at build time and served by whitenoise (hashed, compressed names).
RUN SECRET_KEY=build-only DEBUG=false python manage.py collectstatic --noinput -v0 \
    && mkdir -p /app/var \
    && chown -R lifeline:lifeline /app/var

USER lifeline
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--config", "config/gunicorn.py"]
