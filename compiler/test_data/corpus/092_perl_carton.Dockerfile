FROM perl:5.40-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cpanm --notest Carton
WORKDIR /app
COPY cpanfile cpanfile.snapshot ./
RUN carton install --deployment

FROM perl:5.40-slim
WORKDIR /app
COPY --from=build /app/local ./local
COPY . .
ENV PERL5LIB=/app/local/lib/perl5:/app/lib
EXPOSE 3000
CMD ["perl", "local/bin/hypnotoad", "-f", "script/app"]
