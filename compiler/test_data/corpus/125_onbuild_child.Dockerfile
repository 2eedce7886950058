# The parent declares ONBUILD triggers; this child stage inherits from it by name.
FROM node:20-alpine AS onbuild-parent
WORKDIR /app
ONBUILD COPY package*.json ./
ONBUILD RUN npm ci
ONBUILD COPY . .
ONBUILD RUN npm run build --if-present && npm prune --omit=dev

FROM onbuild-parent AS child
ENV NODE_ENV=production
EXPOSE 3000
CMD ["npm", "start"]
