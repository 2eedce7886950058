FROM openresty/openresty:1.25.3.1-alpine-fat
RUN luarocks install lua-resty-jwt \
    && luarocks install lua-resty-http \
    && luarocks install lua-resty-redis-connector
COPY nginx.conf /usr/local/openresty/nginx/conf/nginx.conf
COPY lua/ /usr/local/openresty/lualib/app/
RUN openresty -t
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["openresty", "-g", "daemon off;"]
