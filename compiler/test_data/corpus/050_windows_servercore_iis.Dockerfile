# escape=`
# syntax=docker/dockerfile:1
FROM mcr.microsoft.com/dotnet/framework/sdk:4.8-windowsservercore-ltsc2019 AS build
WORKDIR C:\src
COPY *.sln .
COPY WebApp\*.csproj .\WebApp\
COPY WebApp\packages.config .\WebApp\
RUN nuget restore
COPY WebApp\. .\WebApp\
WORKDIR C:\src\WebApp
RUN msbuild /p:Configuration=Release `
            /p:DeployOnBuild=true `
            /p:PublishProfile=FolderProfile `
            /p:PublishUrl=C:\publish

FROM mcr.microsoft.com/dotnet/framework/aspnet:4.8-windowsservercore-ltsc2019 AS runtime
SHELL ["powershell", "-NoProfile", "-Command"]
RUN Remove-Website -Name 'Default Web Site'; `
    New-Website -Name 'webapp' -Port 80 -PhysicalPath 'C:\inetpub\wwwroot\webapp'
WORKDIR C:\inetpub\wwwroot\webapp
COPY --from=build C:\publish .
HEALTHCHECK --interval=30s --timeout=5s `
    CMD powershell -command `
        try { `
          $response = Invoke-WebRequest http://localhost/health -UseBasicParsing; `
          if ($response.StatusCode -eq 200) { return 0 } else { return 1 }; `
        } catch { return 1 }
EXPOSE 80
