FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY knowledge knowledge
COPY storage storage
RUN pip install --no-cache-dir . && useradd --system motcua
USER motcua
ENV MOTCUA_HOST=0.0.0.0 MOTCUA_PORT=8080
EXPOSE 8080
CMD ["python", "-m", "bot", "serve"]
