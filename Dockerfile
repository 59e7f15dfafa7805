# Manabi's one image: daphne (web), the Celery workers (queues train and default) and one-off
# `python manage.py ...` commands all run from it. docker-compose.yml says which does what.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBUG=0 \
    MANABI_DATA_DIR=/data \
    MEDIA_ROOT=/data/media \
    TORCH_HOME=/data/torch

WORKDIR /app

# The pinned dependencies first, read from pyproject.toml, so that a change to the code does not
# download torch (a CUDA build from PyPI, several GB) again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['tool']['manabi']['no-deps']))" \
        | xargs -r pip install --no-deps \
    && rm /tmp/requirements.txt

# Then the project itself. Editable, because settings.py finds templates/, static/ and locale/
# beside the webapp package (BASE_DIR): a plain install would move webapp/ into site-packages,
# away from them.
COPY . .
RUN pip install --no-deps --editable .

# Static files (served by WhiteNoise with hashed names) and the .mo translations are built into
# the image, so that the app user needs no write access to /app. The secret is a throwaway used
# only by these two commands; it is not in the image's environment.
ARG BUILD_SECRET_KEY=collectstatic-only-not-a-secret-never-used-at-run-time
RUN DEBUG=0 SECRET_KEY="$BUILD_SECRET_KEY" python manage.py collectstatic --noinput \
    && DEBUG=0 SECRET_KEY="$BUILD_SECRET_KEY" python manage.py compile_translations \
    && python -m compileall -q webapp trainer

# Run as an unprivileged user. The named volumes mounted at /data/media and /data/torch take
# their owner from these folders when they are first created.
RUN useradd --create-home --uid 10001 --user-group manabi \
    && mkdir -p /data/media /data/torch/hub/checkpoints \
    && chown -R manabi:manabi /data/media /data/torch
USER manabi

EXPOSE 8000
# No HEALTHCHECK here: the workers use this image too; docker-compose.yml gives web its own.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "webapp.asgi:application"]
