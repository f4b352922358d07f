#!/bin/sh
# The Responses API: each answer is stored under its "id"; a follow-up sends only the new
# input and "previous_response_id", and the gateway supplies the earlier turns.
set -eu
respond() {
  curl -sS --fail-with-body "${OPENAI_BASE_URL:-http://127.0.0.1:3000/v1}/responses" \
    -H "Authorization: Bearer ${OPENAI_API_KEY:-unused}" \
    -H "Content-Type: application/json" \
    -d "$1"
}
model="${OPENAI_MODEL:-echo}"

first=$(respond '{"model": "'"$model"'", "input": "My name is Ada. Please remember it."}')
echo "$first"
id=$(echo "$first" | grep -o '"id":"resp_[^"]*"' | head -n 1 | cut -d '"' -f 4)  # or: jq -r .id
respond '{"model": "'"$model"'", "input": "What is my name?", "previous_response_id": "'"$id"'"}'
echo
