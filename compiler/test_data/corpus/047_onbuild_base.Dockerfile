FROM python:3.11-slim
LABEL description="Base image for internal Python services; triggers run in child builds"
RUN mkdir -p /usr/src/app
WORKDIR /usr/src/app
ONBUILD ARG PIP_INDEX_URL=https://pypi.org/simple
ONBUILD COPY requirements.txt /usr/src/app/
ONBUILD RUN pip install --no-cache-dir --index-url "$PIP_INDEX_URL" -r requirements.txt
ONBUILD COPY . /usr/src/app
ONBUILD RUN python -m compileall -q .
ONBUILD HEALTHCHECK --interval=1m CMD python -c "print('ok')"
ONBUILD LABEL org.example.built-from-onbuild=true
ONBUILD ENV PYTHONPATH=/usr/src/app
ONBUILD EXPOSE 8000
CMD ["python", "main.py"]
