FROM rocker/shiny-verse:4.4.1
RUN apt-get update && apt-get install -y --no-install-recommends \
        libxml2-dev libssl-dev libcurl4-openssl-dev libgdal-dev libudunits2-dev \
    && rm -rf /var/lib/apt/lists/*
RUN R -e "install.packages(c('shinydashboard', 'DT', 'plotly', 'sf', 'leaflet'), repos='https://cloud.r-project.org/')"
COPY --chown=shiny:shiny app/ /srv/shiny-server/dashboard/
COPY shiny-server.conf /etc/shiny-server/shiny-server.conf
USER shiny
EXPOSE 3838
CMD ["/usr/bin/shiny-server"]
