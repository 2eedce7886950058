# escape=`
# Windows images use the backtick so that backslashes in paths stay literal.
FROM mcr.microsoft.com/windows/servercore:ltsc2022

SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]

ENV GIT_VERSION=2.45.2 `
    NODE_VERSION=20.15.1

RUN Invoke-WebRequest -Uri "https://nodejs.org/dist/v$env:NODE_VERSION/node-v$env:NODE_VERSION-win-x64.zip" -OutFile node.zip; `
    Expand-Archive node.zip -DestinationPath C:\; `
    Rename-Item -Path "C:\node-v$env:NODE_VERSION-win-x64" -NewName 'C:\nodejs'; `
    Remove-Item -Force node.zip

RUN setx /M PATH $($env:PATH + ';C:\nodejs')

WORKDIR C:\app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . C:\app\

EXPOSE 3000
CMD ["node.exe", "server.js"]
