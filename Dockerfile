# One image for every Airflow service (api-server, scheduler, dag-processor, triggerer, Celery worker),
# built from the project's lock file only.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow CXW_HOME=/data
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 tini && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 50000 airflow && mkdir -p /opt/airflow /opt/cx \
    /data/raw /data/state /data/deadletter /data/warehouse /data/published /data/runs /data/alerts /data/dbt \
 && chown -R airflow /opt/airflow /data
WORKDIR /opt/cx
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY --chown=airflow . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .
USER airflow
ENTRYPOINT ["/usr/bin/tini", "--", "airflow"]
