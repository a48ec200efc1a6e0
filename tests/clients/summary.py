"""The contract's Python client, unchanged: httpx.get with params.

Usage: python3 summary.py BASE TOKEN START END
"""
import json
import sys

import httpx

BASE, token, start, end = sys.argv[1:5]
response = httpx.get(BASE + "/v1/audit/events:summary", params={"start_time": start, "end_time": end}, headers={"Authorization": "Bearer " + token})
sys.stdout.write(json.dumps({"status": response.status_code, "body": response.json()}))
