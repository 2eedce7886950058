FROM julia:1.10-bookworm
ENV JULIA_PROJECT=/app JULIA_DEPOT_PATH=/opt/julia-depot JULIA_NUM_THREADS=auto
WORKDIR /app
COPY Project.toml Manifest.toml ./
RUN julia -e 'using Pkg; Pkg.instantiate(); Pkg.precompile()'
COPY src/ src/
RUN julia -e 'using Pkg; Pkg.precompile()' && chmod -R a+rX /opt/julia-depot
EXPOSE 8080
CMD ["julia", "--project=/app", "-e", "using Server; Server.main()"]
