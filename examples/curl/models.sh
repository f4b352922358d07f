#!/bin/sh
# The models this gateway serves: the names to use as "model".
set -eu
curl -sS --fail-with-body "${OPENAI_BASE_URL:-http://127.0.0.1:3000/v1}/models" \
  -H "Authorization: Bearer ${OPENAI_API_KEY:-unused}"
echo
