"""The ceiling of our web stack: a bottle app served by waitress that only parses and echoes JSON.

    python bare_echo.py --port P [--threads 4]

It answers the same routes the benchmark calls on a PESTO service (`GET /api/v1/health`,
`POST /api/v1/process`) with nothing between the HTTP request and the JSON answer: no schema,
no decoding, no slots. What pesto-serve does on top of this is the runtime's own cost.
"""

import argparse

import bottle
import waitress

app = bottle.Bottle()


@app.get("/api/v1/health")
def health() -> str:
    bottle.response.content_type = "text/plain"
    return "OK"


@app.post("/api/v1/process")
def process() -> dict:
    return bottle.request.json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads, _quiet=True)


if __name__ == "__main__":
    main()
