# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:8.0-alpine AS build
ARG TARGETARCH
WORKDIR /source
COPY --link aspnetapp/*.csproj .
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet restore -a $TARGETARCH
COPY --link aspnetapp/. .
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish -a $TARGETARCH --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:8.0-alpine
EXPOSE 8080
WORKDIR /app
COPY --link --from=build /app .
USER 1654
ENTRYPOINT ["./aspnetapp"]
