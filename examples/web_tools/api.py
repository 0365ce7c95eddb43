"""A stand-in weather API for the web_tools example, on loopback only.

GET /v1/weather?city=NAME answers JSON when the request carries
`Authorization: Bearer $WEATHER_API_TOKEN` and 401 otherwise, so a run
shows that the host added the secret the plugin never held.
Usage: python3 api.py PORT   (WEATHER_API_TOKEN in the environment)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = os.environ.get("WEATHER_API_TOKEN", "")
CITIES = {"paris": (18, "light rain"), "lisbon": (24, "sunny"), "oslo": (6, "snow")}


class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/v1/weather":
            return self.answer(404, {"error": "not found"})
        if not TOKEN or self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, {"error": "missing or wrong token"})
        city = parse_qs(url.query).get("city", [""])[0]
        temp, conditions = CITIES.get(city.lower(), (15, "cloudy"))
        self.answer(200, {"city": city, "temp_c": temp, "conditions": conditions})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Api).serve_forever()
