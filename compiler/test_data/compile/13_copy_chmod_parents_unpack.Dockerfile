FROM scratch
# Issue 12: symbolic --chmod (carried as mode_str), the --parents pivot kept in the
# path, ADD --unpack.
COPY --chmod=u=rwX,go=rX src/ /app/
COPY --chmod=0640 a.txt /a.txt
COPY --parents ./x/./y/**/*.txt /p/
ADD --unpack=false a.tar.gz /keep/
ADD --unpack=true https://example.com/a.tar.gz /u/
