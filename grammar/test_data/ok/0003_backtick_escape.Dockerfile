# escape=`
FROM mcr.microsoft.com/windows/servercore
RUN powershell -Command `
    Write-Host hello `
    ; Write-Host world
COPY C:\src\app C:\app\
WORKDIR C:\app
