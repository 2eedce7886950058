FROM python:3.12-alpine AS docs
RUN pip install --no-cache-dir mkdocs-material==9.5.27 mkdocs-redirects mkdocs-minify-plugin
WORKDIR /docs
COPY mkdocs.yml .
COPY docs/ docs/
RUN mkdocs build --strict --site-dir /site

FROM nginxinc/nginx-unprivileged:1.27-alpine
COPY --from=docs /site /usr/share/nginx/html
EXPOSE 8080
