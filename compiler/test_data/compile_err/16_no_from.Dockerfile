# nothing here
ARG X
