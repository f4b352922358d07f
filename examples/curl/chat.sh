#!/bin/sh
# Basic chat: one question, one answer (a chat.completion JSON object).
set -eu
curl -sS --fail-with-body "${OPENAI_BASE_URL:-http://127.0.0.1:3000/v1}/chat/completions" \
  -H "Authorization: Bearer ${OPENAI_API_KEY:-unused}" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "'"${OPENAI_MODEL:-echo}"'",
    "messages": [{"role": "user", "content": "Say hello to ModelMux in one short sentence."}]
  }'
echo
