# syntax=docker/dockerfile:1
FROM ruby:3.1-bookworm AS site
ENV BUNDLE_PATH=/usr/local/bundle \
    JEKYLL_ENV=production
WORKDIR /site
COPY Gemfile* ./
RUN --mount=type=cache,target=/usr/local/bundle/cache \
    gem install bundler:2.5.11 && bundle install
COPY . .
RUN bundle exec jekyll build --destination /out

FROM nginx:stable-alpine
COPY --from=site /out /usr/share/nginx/html
EXPOSE 80
