#!/bin/sh
# Streaming: server-sent events, one chat.completion.chunk per "data:" line, then "data: [DONE]".
set -eu
curl -sS -N --fail-with-body "${OPENAI_BASE_URL:-http://127.0.0.1:3000/v1}/chat/completions" \
  -H "Authorization: Bearer ${OPENAI_API_KEY:-unused}" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "'"${OPENAI_MODEL:-echo}"'",
    "messages": [{"role": "user", "content": "Count from one to ten in words, please."}],
    "stream": true
  }'
