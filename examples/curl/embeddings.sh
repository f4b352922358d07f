#!/bin/sh
# Embeddings: one vector per input (a list of embedding objects, floats unless "encoding_format": "base64").
set -eu
curl -sS --fail-with-body "${OPENAI_BASE_URL:-http://127.0.0.1:3000/v1}/embeddings" \
  -H "Authorization: Bearer ${OPENAI_API_KEY:-unused}" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "'"${OPENAI_EMBEDDING_MODEL:-echo}"'",
    "input": ["The cat sleeps on the windowsill.", "Interest rates rose again."],
    "dimensions": 8
  }'
echo
