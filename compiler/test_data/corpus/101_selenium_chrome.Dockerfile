FROM python:3.12-slim-bookworm
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
        chromium \
        chromium-driver \
        fonts-liberation \
        fonts-noto-color-emoji \
        libnss3 \
        xvfb \
    && rm -rf /var/lib/apt/lists/*
ENV CHROME_BIN=/usr/bin/chromium CHROMEDRIVER=/usr/bin/chromedriver DISPLAY=:99
WORKDIR /scraper
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY scraper/ scraper/
RUN useradd -m scraper && mkdir -p /scraper/out && chown scraper /scraper/out
USER scraper
VOLUME ["/scraper/out"]
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
CMD Xvfb :99 -screen 0 1280x1024x24 & python -m scraper --out /scraper/out
