FROM ghcr.io/cirruslabs/flutter:3.22.2 AS build
WORKDIR /app
COPY pubspec.yaml pubspec.lock ./
RUN flutter pub get
COPY . .
RUN flutter build web --release --web-renderer canvaskit

FROM dart:3.4 AS server
WORKDIR /srv
COPY server/pubspec.* ./
RUN dart pub get
COPY server/ .
RUN dart compile exe bin/server.dart -o bin/server

FROM scratch
COPY --from=server /runtime/ /
COPY --from=server /srv/bin/server /app/bin/
COPY --from=build /app/build/web /app/public
EXPOSE 8080
CMD ["/app/bin/server"]
