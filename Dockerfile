# The API and worker image (`judge-service serve` or `judge-service worker`). The judge runs
# separately (vLLM on GPUs, see deploy/); this image has no torch.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY judge_service ./judge_service
COPY rubrics ./rubrics
COPY prompts ./prompts
RUN pip install --no-cache-dir . && useradd --create-home judge \
    && mkdir -p /var/lib/judge/spool && chown judge /var/lib/judge/spool
USER judge
ENV JUDGE_RUBRICS_DIR=/app/rubrics JUDGE_PROMPTS_DIR=/app/prompts JUDGE_SPOOL_DIR=/var/lib/judge/spool
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["judge-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
