FROM mcr.microsoft.com/playwright:v1.45.1-jammy
WORKDIR /e2e
ENV CI=1 PLAYWRIGHT_BROWSERS_PATH=/ms-playwright
COPY package.json package-lock.json ./
RUN npm ci
COPY playwright.config.ts ./
COPY tests/ tests/
USER pwuser
ENTRYPOINT ["npx", "playwright", "test"]
CMD ["--reporter=list"]
