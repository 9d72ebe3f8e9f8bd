FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY config config
COPY core core
COPY soundforge soundforge
COPY storage storage
COPY workers workers
RUN pip install --no-cache-dir .
ENV DOWNLOAD_DIR=/data/downloads
VOLUME /data
ENTRYPOINT ["soundforge"]
CMD ["run"]
