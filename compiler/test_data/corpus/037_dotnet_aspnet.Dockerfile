FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build
WORKDIR /source
COPY *.sln .
COPY src/Api/*.csproj ./src/Api/
COPY src/Domain/*.csproj ./src/Domain/
COPY tests/Api.Tests/*.csproj ./tests/Api.Tests/
RUN dotnet restore
COPY . .
RUN dotnet test --no-restore tests/Api.Tests
RUN dotnet publish src/Api -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:8.0
WORKDIR /app
COPY --from=build /app ./
ENV ASPNETCORE_URLS=http://+:8080 \
    DOTNET_RUNNING_IN_CONTAINER=true
EXPOSE 8080
USER app
ENTRYPOINT ["dotnet", "Api.dll"]
