# just a comment, not a directive
# escape=`
from Alpine:3.20 as Base
  run   apk add --no-cache curl    
# comment between instructions

copy . /src
Env PATH=/usr/local/bin:$PATH
arg VERSION
