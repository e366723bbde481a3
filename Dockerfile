# accounts-job as an image for nightly runs and Dask workers (README: "Deploying").
#
#   docker build -t accounts-job .
#   docker run --rm -v /srv/accounts:/data accounts-job run /data/incoming/tx.csv \
#       --state /data/state --out /data/out/accounts.parquet
#
# The build installs the locked dependencies and compiles every kernel into the installed
# package (deploy/install.sh, the same script the test suite runs). The runtime user cannot
# write that package; the job then caches in the user's own folder, seeded from the
# package's compiled code, so a run compiles nothing. The code is compiled for the x86-64
# level of the build machine (x86-64-v3 on most): build on a machine of at least the level
# of the machines the image will run on.

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never UV_PYTHON=/usr/local/bin/python3.11 UV_LINK_MODE=copy
COPY pyproject.toml uv.lock README.md LICENSE /src/
COPY job /src/job
COPY generator /src/generator
COPY deploy /src/deploy
RUN sh /src/deploy/install.sh /src /opt/accounts-job

FROM python:3.11-slim
# Owned by root, as built: the runtime user can read and run it, not change it.
COPY --from=build /opt/accounts-job /opt/accounts-job
RUN useradd --create-home --uid 10001 accounts
USER 10001
ENV PATH=/opt/accounts-job/bin:$PATH PYTHONDONTWRITEBYTECODE=1
WORKDIR /data
ENTRYPOINT ["accounts-job"]
CMD ["--help"]
