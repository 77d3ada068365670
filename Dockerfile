# The orgchat component: the package and its runtime dependencies at the
# versions of requirements/lock.txt, run as an unprivileged user. Nothing is
# installed when a container starts. docker-compose.yml builds it; by hand:
#
#   docker build -t orgchat .
#   docker run --rm orgchat orgchat --version
#
# Configuration comes from ORGCHAT_* variables or a mounted file
# (`--config`, docs/config.md); the image holds no secret.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --user-group --uid 10001 --home-dir /nonexistent \
        --shell /usr/sbin/nologin orgchat

WORKDIR /src
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml setup.cfg README.md ./
COPY component component
COPY extensions extensions
COPY storage storage
# Not editable: the code goes to site-packages, owned by root, read-only for
# the user that runs it. The lock constrains every runtime dependency.
RUN pip install --root-user-action=ignore -c requirements/lock.txt . \
    && cd / && rm -rf /src

WORKDIR /
USER orgchat
CMD ["orgchat", "run"]
