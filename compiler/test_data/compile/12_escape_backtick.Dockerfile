# escape=`
FROM busybox
ENV DIR=C:\app
RUN echo `
    $DIR
COPY a.txt `
     b.txt /dst/
