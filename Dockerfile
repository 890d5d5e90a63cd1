# dnsportal: one image for web, worker, scheduler and watch (the command differs; see docker-compose.yml).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml ./
# Runtime pins only (no test tools in the image), straight from pyproject.toml.
RUN python -m venv /venv \
 && /venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
 && /venv/bin/pip install -r /tmp/requirements.txt
COPY . .
# collectstatic needs production settings to build the hashed manifest; these throwaway keys never leave the stage.
RUN DNSPORTAL_MODE=production STATIC_ROOT=/app/staticfiles DNSPORTAL_DATA_DIR=/tmp \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DNSPORTAL_ENCRYPTION_KEYS="$(/venv/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    /venv/bin/python manage.py collectstatic --no-input -v 0

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /home/dnsportal dnsportal
COPY --from=build /venv /venv
COPY --from=build --chown=root:root /app /app
WORKDIR /app
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 DNSPORTAL_MODE=production STATIC_ROOT=/app/staticfiles \
    DNSPORTAL_DATA_DIR=/home/dnsportal/data
USER dnsportal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["gunicorn", "dnsportal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
